// libcautograd_preload.so: the library `cautograd record -- COMMAND` puts in
// LD_PRELOAD. It depends on no libtorch. The recorder proper,
// libcautograd_shim.so, links one particular libtorch; preloaded itself it
// would pull that libtorch into every process of COMMAND's tree, and a process
// that uses another torch would then hold two and crash. This library instead
// watches each process and loads the shim only into one that turns out to use
// the libtorch the shim was built against.
//
// Environment (set by cautograd record):
//   CAUTOGRAD_SHIM_DIR  unset or empty: the library only forwards the calls it wraps
//   CAUTOGRAD_SHIM      absolute path of libcautograd_shim.so
//   CAUTOGRAD_LIBC10    realpath of the libc10 shared object the shim was built against
//
// A process has chosen its libtorch once a libc10 is loaded. That is looked at
// just before main (a C++ program linked against libtorch: its libraries'
// constructors and its static initializers have all run by then) and, from
// main on, after each outermost dlopen, once it has run the constructors of
// what it loaded (Python importing torch dlopens torch/_C.so, which pulls
// libc10 in). The right libc10: the shim is dlopened, once. Another one: one
// line on stderr, and nothing more in that process. After exec LD_PRELOAD
// brings this library into the new program, which decides for itself; a
// forked child inherits its parent's decision.
//
// dlopen is wrapped with care, as every dlopen of the program goes through it:
// see PathForCaller.
//
// It also wraps torch::autograd::Engine::set_compiled_autograd, so that
// backward calls run by compiled autograd pass through the shim too, and
// _exit and _Exit (Python's os._exit), which skip atexit handlers: the shim
// gets to wait for its stream's thread to write the calls that had ended.
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace cautograd {
namespace {

using DlopenFn = void* (*)(const char*, int);
using MainFn = int (*)(int, char**, char**);
using StartMainFn = int (*)(MainFn, int, char**, void (*)(), void (*)(), void (*)(), void*);
using SetCompiledAutogradFn = void (*)(void*);
using WrapFn = void* (*)(void*);

// Nothing here may need a constructor: other libraries' constructors can call
// dlopen before this library's own would have run.
enum State : int { kUndecided, kDeciding, kLoaded, kInert };
std::atomic<int> g_state{kUndecided};
std::atomic<bool> g_look_again{false};
std::atomic<DlopenFn> g_real_dlopen{nullptr};
std::atomic<WrapFn> g_wrap{nullptr};
MainFn g_real_main = nullptr;
// Before main, libraries' constructors are still running, libc10's and
// libtorch's among them maybe: no check may load the shim then.
std::atomic<bool> g_main_started{false};
// dlopen calls under way on this thread. Only the outermost may check when it
// returns: while it runs, libraries it mapped (libc10 among them) may not have
// been initialized yet, and their constructors call dlopen too.
thread_local int t_dlopen_depth = 0;

bool Enabled() {
  const char* dir = std::getenv("CAUTOGRAD_SHIM_DIR");
  return dir && *dir;
}

DlopenFn RealDlopen() {
  DlopenFn real = g_real_dlopen.load();
  if (!real) {
    real = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
    g_real_dlopen.store(real);
  }
  return real;
}

// realpath(3), or the path itself when it has none.
void RealPath(const char* path, char (&out)[PATH_MAX]) {
  if (!::realpath(path, out)) std::snprintf(out, sizeof out, "%s", path);
}

void DirName(char* path) {
  char* slash = std::strrchr(path, '/');
  if (!slash)
    std::strcpy(path, ".");
  else
    slash[slash == path ? 1 : 0] = '\0';
}

// "process <pid> (<exe>)", for messages.
void ThisProcess(char (&out)[PATH_MAX + 32]) {
  char exe[PATH_MAX] = "?";
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) exe[n] = '\0';
  std::snprintf(out, sizeof out, "process %d (%s)", static_cast<int>(::getpid()), exe);
}

// One line in one write, so that the lines of a tree's processes do not mix.
__attribute__((format(printf, 1, 2))) void Say(const char* format, ...) {
  char line[4 * PATH_MAX];
  va_list args;
  va_start(args, format);
  int length = std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (length <= 0) return;
  if (static_cast<size_t>(length) >= sizeof line) length = sizeof line - 1;
  line[length - 1] = '\n';  // truncated or not
  ssize_t ignored = ::write(STDERR_FILENO, line, length);
  (void)ignored;
}

// libc10.so (pip wheels) or libc10.so.<version> (Debian); not libc10_cuda.so.
int FindLibc10(struct dl_phdr_info* info, size_t, void* data) {
  const char* name = info->dlpi_name ? info->dlpi_name : "";
  const char* slash = std::strrchr(name, '/');
  const char* base = slash ? slash + 1 : name;
  if (std::strcmp(base, "libc10.so") != 0 && std::strncmp(base, "libc10.so.", 10) != 0) return 0;
  std::snprintf(static_cast<char*>(data), PATH_MAX, "%s", name);
  return 1;
}

// The next state, given what is loaded now.
int Decide() {
  if (!Enabled()) return kInert;
  char libc10[PATH_MAX] = "";
  dl_iterate_phdr(FindLibc10, libc10);
  if (!*libc10) return kUndecided;
  const char* wanted = std::getenv("CAUTOGRAD_LIBC10");
  const char* shim = std::getenv("CAUTOGRAD_SHIM");
  char found_real[PATH_MAX], wanted_real[PATH_MAX], process[PATH_MAX + 32];
  RealPath(libc10, found_real);
  RealPath(wanted ? wanted : "", wanted_real);
  ThisProcess(process);
  const char* why = nullptr;
  if (!wanted || !*wanted) {
    why = "CAUTOGRAD_LIBC10 is not set";
  } else if (!shim || !*shim) {
    why = "CAUTOGRAD_SHIM is not set";
  } else if (std::strcmp(found_real, wanted_real) != 0) {
    DirName(found_real);
    DirName(wanted_real);
    Say("cautograd: %s uses libtorch from %s, not the one this recording is for (%s); "
        "its backward calls are not recorded\n",
        process, found_real, wanted_real);
    return kInert;
  } else if (void* handle = RealDlopen()(shim, RTLD_NOW | RTLD_LOCAL)) {
    g_wrap.store(reinterpret_cast<WrapFn>(dlsym(handle, "cautograd_shim_wrap_compiled_autograd")));
    return kLoaded;
  } else {
    why = dlerror();
    if (!why) why = "dlopen failed";
  }
  Say("cautograd: cannot load the recorder into %s: %s; its backward calls are not recorded\n", process, why);
  return kInert;
}

// Called at any moment a libc10 may have appeared. Callers never wait for a
// decision under way in another thread: that thread may be dlopening the shim,
// which needs the loader lock, which the waiting thread may hold (dlopen runs
// constructors under it, and constructors call dlopen). Instead they flag it,
// and the deciding thread looks again. A Check within Decide (the shim's
// libraries may call dlopen as they load) returns the same way.
void Check() {
  if (!g_main_started.load() || g_state.load() >= kLoaded) return;
  g_look_again.store(true);
  int expected = kUndecided;
  while (g_look_again.load() && g_state.compare_exchange_strong(expected, kDeciding)) {
    g_look_again.store(false);
    g_state.store(Decide());
    expected = kUndecided;
  }
}

int MainWrapper(int argc, char** argv, char** envp) {
  g_main_started.store(true);
  Check();
  return g_real_main(argc, argv, envp);
}

// A file the dynamic linker would accept for this process (it skips others on
// its search path, e.g. 32-bit libraries): same ELF class and machine as this
// library, whose own ELF header is mapped at the start of its first segment.
bool IsLoadable(const char* path) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ElfW(Ehdr) header;
  bool ok = ::read(fd, &header, sizeof header) == static_cast<ssize_t>(sizeof header) &&
            std::memcmp(header.e_ident, ELFMAG, SELFMAG) == 0;
  ::close(fd);
  Dl_info self;
  if (!ok || !dladdr(reinterpret_cast<void*>(&IsLoadable), &self) || !self.dli_fbase) return ok;
  const auto* own = static_cast<const ElfW(Ehdr)*>(self.dli_fbase);
  return header.e_ident[EI_CLASS] == own->e_ident[EI_CLASS] && header.e_machine == own->e_machine;
}

// glibc's dlopen looks a bare library name up along the RPATH/RUNPATH of the
// object that called it, found from its return address, which for the real
// dlopen is now this library. So find the file along the caller's path here
// and pass it by full path. Returns false to pass `file` unchanged: names with
// a '/' or a '$' (dynamic string tokens, rare in dlopen), names already loaded
// (dlopen matches those before any search, whoever calls), and names found
// nowhere on the caller's own path (the rest of the search, ld.so.cache and
// the system directories, is the same for every caller).
bool PathForCaller(const char* file, const void* caller, char (&found)[PATH_MAX]) {
  if (!file || std::strpbrk(file, "/$")) return false;
  Dl_info info;
  struct link_map* map = nullptr;
  if (!dladdr1(caller, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) || !map) return false;
  // RTLD_DI_SERINFO lists the caller's directories in the order dlopen
  // searches them. glibc's handles are link_maps, and this request needs none
  // of what only a dlopen'ed one has (see SetCompiledAutograd).
  Dl_serinfo size;
  if (dlinfo(map, RTLD_DI_SERINFOSIZE, &size) != 0) return false;
  auto* paths = static_cast<Dl_serinfo*>(std::malloc(size.dls_size));
  if (!paths) return false;
  *paths = size;
  bool ok = false;
  if (dlinfo(map, RTLD_DI_SERINFO, paths) == 0) {
    for (unsigned i = 0; i < paths->dls_cnt && !ok; ++i) {
      if (paths->dls_serpath[i].dls_flags & LA_SER_DEFAULT) break;  // ld.so.cache comes before these
      int n = std::snprintf(found, sizeof found, "%s/%s", paths->dls_serpath[i].dls_name, file);
      ok = n > 0 && static_cast<size_t>(n) < sizeof found && IsLoadable(found);
    }
  }
  std::free(paths);
  if (!ok) return false;
  // Loaded already (e.g. by SONAME): a full path could load a second copy.
  if (void* loaded = RealDlopen()(file, RTLD_LAZY | RTLD_NOLOAD)) {
    dlclose(loaded);
    return false;
  }
  return true;
}

// `self` is our interposer for `name`, `caller` the return address of the
// call to it.
void SetCompiledAutograd(const char* name, std::atomic<SetCompiledAutogradFn>* cache,
                         SetCompiledAutogradFn self, const void* caller, void* fn) {
  Check();  // libtorch is loaded if this is called; make sure the shim is too
  SetCompiledAutogradFn real = cache->load();
  if (!real) {
    real = reinterpret_cast<SetCompiledAutogradFn>(dlsym(RTLD_NEXT, name));
    // RTLD_NEXT sees only the program's initial libraries, not a libtorch
    // dlopened RTLD_LOCAL (as Python's torch/_C.so pulls it in). The caller
    // (libtorch_python.so) has it among its dependencies. A link_map will not
    // do as the handle here: one loaded as a dependency has no search list.
    Dl_info info;
    struct link_map* map = nullptr;
    if (!real && dladdr1(caller, &info, reinterpret_cast<void**>(&map), RTLD_DL_LINKMAP) && map &&
        map->l_name && *map->l_name) {
      if (void* handle = RealDlopen()(map->l_name, RTLD_LAZY | RTLD_NOLOAD)) {
        real = reinterpret_cast<SetCompiledAutogradFn>(dlsym(handle, name));
        dlclose(handle);
      }
    }
    if (real == self) real = nullptr;  // the program's own search list has us in it
    cache->store(real);
  }
  if (!real) return;
  WrapFn wrap = g_wrap.load();
  real(wrap ? wrap(fn) : fn);
}

}  // namespace
}  // namespace cautograd

// The symbols below interpose the program's own: this library comes first in
// the global lookup scope. Exported by name, as the build hides the rest.
#define CAUTOGRAD_EXPORT extern "C" __attribute__((visibility("default")))

CAUTOGRAD_EXPORT int __libc_start_main(cautograd::MainFn main, int argc, char** argv, void (*init)(),
                                       void (*fini)(), void (*rtld_fini)(), void* stack_end) {
  auto real = reinterpret_cast<cautograd::StartMainFn>(dlsym(RTLD_NEXT, "__libc_start_main"));
  if (!real) ::_exit(127);
  if (cautograd::Enabled()) {
    cautograd::g_real_main = main;
    main = cautograd::MainWrapper;
  }
  return real(main, argc, argv, init, fini, rtld_fini, stack_end);
}

// Named through a label: <dlfcn.h> declares dlopen noexcept, and a noexcept
// function calling write() and open() (cancellation points) would need
// libstdc++'s personality routine, and so load libstdc++ into every process.
CAUTOGRAD_EXPORT void* CautogradDlopen(const char* file, int mode) __asm__("dlopen");
CAUTOGRAD_EXPORT void* CautogradDlopen(const char* file, int mode) {
  char path[PATH_MAX];
  bool found = cautograd::PathForCaller(file, __builtin_return_address(0), path);
  ++cautograd::t_dlopen_depth;
  void* handle = cautograd::RealDlopen()(found ? path : file, mode);
  if (--cautograd::t_dlopen_depth == 0 && handle) cautograd::Check();
  return handle;
}

namespace cautograd {
std::atomic<void (*)()> g_before_exit{nullptr};
[[noreturn]] void ExitNow(int status) {
  if (void (*f)() = g_before_exit.load()) f();
  for (;;) syscall(SYS_exit_group, status);
}
}  // namespace cautograd

// What the shim runs before _exit or _Exit end the process.
CAUTOGRAD_EXPORT void cautograd_preload_before_exit(void (*fn)()) { cautograd::g_before_exit.store(fn); }

// Named through labels: <unistd.h> and <stdlib.h> declare them noexcept.
CAUTOGRAD_EXPORT void CautogradExit(int status) __asm__("_exit");
CAUTOGRAD_EXPORT void CautogradExit(int status) { cautograd::ExitNow(status); }
CAUTOGRAD_EXPORT void CautogradExit2(int status) __asm__("_Exit");
CAUTOGRAD_EXPORT void CautogradExit2(int status) { cautograd::ExitNow(status); }

// 1 once the shim is loaded into this process.
CAUTOGRAD_EXPORT int cautograd_preload_active(void) {
  return cautograd::g_state.load() == cautograd::kLoaded;
}

// static void torch::autograd::Engine::set_compiled_autograd(fn), fn taking the
// Node as const c10::intrusive_ptr<Node>& (libtorch 2.13 on) or as
// const std::shared_ptr<Node>& (2.x before): std::vector<at::Tensor> (*)(
// const <ptr to Node>&, const GraphTask&, bool, const std::vector<Edge>&).
#define CAUTOGRAD_SET_COMPILED_AUTOGRAD_INTRUSIVE                                                        \
  "_ZN5torch8autograd6Engine21set_compiled_autogradEPFSt6vectorIN2at6TensorESaIS4_EERKN3c1013intrusive_" \
  "ptrINS0_4NodeENS7_6detail34intrusive_target_default_null_typeIS9_EEEERKNS0_9GraphTaskEbRKS2_INS0_"    \
  "4EdgeESaISJ_EEE"
#define CAUTOGRAD_SET_COMPILED_AUTOGRAD_SHARED                                                     \
  "_ZN5torch8autograd6Engine21set_compiled_autogradEPFSt6vectorIN2at6TensorESaIS4_EERKSt10shared_" \
  "ptrINS0_4NodeEERKNS0_9GraphTaskEbRKS2_INS0_4EdgeESaISF_EEE"

CAUTOGRAD_EXPORT void CautogradSetCompiledAutogradIntrusive(void* fn) __asm__(
    CAUTOGRAD_SET_COMPILED_AUTOGRAD_INTRUSIVE);
CAUTOGRAD_EXPORT void CautogradSetCompiledAutogradShared(void* fn) __asm__(
    CAUTOGRAD_SET_COMPILED_AUTOGRAD_SHARED);

CAUTOGRAD_EXPORT void CautogradSetCompiledAutogradIntrusive(void* fn) {
  static std::atomic<cautograd::SetCompiledAutogradFn> real{nullptr};
  cautograd::SetCompiledAutograd(CAUTOGRAD_SET_COMPILED_AUTOGRAD_INTRUSIVE, &real,
                                 CautogradSetCompiledAutogradIntrusive, __builtin_return_address(0), fn);
}

CAUTOGRAD_EXPORT void CautogradSetCompiledAutogradShared(void* fn) {
  static std::atomic<cautograd::SetCompiledAutogradFn> real{nullptr};
  cautograd::SetCompiledAutograd(CAUTOGRAD_SET_COMPILED_AUTOGRAD_SHARED, &real,
                                 CautogradSetCompiledAutogradShared, __builtin_return_address(0), fn);
}
