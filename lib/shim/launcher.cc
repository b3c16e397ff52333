#include "lib/shim/launcher.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <dirent.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/shim/paths.h"
#include "lib/trace/stream.h"
#include "lib/trace/trace_io.h"

extern char** environ;

namespace cautograd {

namespace {

// Runs argv (no shell) without the shim, and returns its stdout.
bool Capture(const std::vector<std::string>& argv, std::string* out, int* status) {
  int fds[2];
  if (pipe(fds) != 0) return false;
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    int null = ::open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, STDERR_FILENO);
    close(fds[0]);
    close(fds[1]);
    unsetenv("LD_PRELOAD");
    unsetenv("CAUTOGRAD_SHIM_DIR");
    unsetenv("CAUTOGRAD_SHIM");
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  out->clear();
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) out->append(buf, size_t(n));
  close(fds[0]);
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
  return true;
}

// The interpreter a script names in its #! line, if it is a Python.
std::string PythonOf(const std::string& path, const std::string& argv0) {
  std::string base = BaseName(path);
  if (base.rfind("python", 0) == 0) return argv0;
  std::ifstream in(path, std::ios::binary);
  std::string first;
  std::getline(in, first);
  if (first.rfind("#!", 0) != 0 || first.find("python") == std::string::npos) return "";
  // "#!/usr/bin/env python3" or "#!/usr/bin/python3 -u"
  std::string line = first.substr(2);
  size_t env = line.find("env ");
  if (env != std::string::npos) line = line.substr(env + 4);
  line.erase(0, line.find_first_not_of(' '));
  return line.substr(0, line.find(' '));
}

}  // namespace

bool FindProgramTorch(const std::vector<std::string>& command, ProgramTorch* torch, std::string* err) {
  *torch = ProgramTorch();
  std::string path = FindProgram(command[0]);
  if (path.empty()) {
    *err = "command not found '" + command[0] + "'";
    return false;
  }
  std::string python = PythonOf(path, command[0]);
  if (!python.empty()) {
    std::string out;
    int status = 0;
    const std::string probe =
        "import os, torch\n"
        "print(torch.__version__)\n"
        "print(os.path.dirname(os.path.realpath(torch.__file__)))\n";
    if (!Capture({python, "-c", probe}, &out, &status) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      *err = "'" + python + "' (" + RealPath(FindProgram(python)) +
             ") cannot import torch; record with a Python that has it (a venv with 'pip install torch', or "
             "/usr/bin/python3 with Debian's python3-torch)";
      return false;
    }
    torch->uses_torch = true;
    torch->python = python;
    torch->version = out.substr(0, out.find('\n'));
    std::string torch_dir = out.substr(out.find('\n') + 1);
    torch_dir = torch_dir.substr(0, torch_dir.find('\n'));
    // Debian's torch/lib holds links to the system libraries; a pip wheel
    // holds its own.
    torch->libc10 = RealPath(torch_dir + "/lib/libc10.so");
    if (!IsFile(torch->libc10)) {
      *err = "'" + python + "' imports torch " + torch->version + " from " + torch_dir +
             ", which has no lib/libc10.so; cautograd records only torch builds that ship their libraries";
      return false;
    }
    return true;
  }
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  if (std::memcmp(magic,
                  "\x7f"
                  "ELF",
                  4) != 0)
    return true;  // a script of another kind
  std::string out;
  int status = 0;
  if (!Capture({"ldd", path}, &out, &status)) return true;
  size_t pos = out.find("libc10.so");
  if (pos == std::string::npos) return true;  // not linked to libtorch
  size_t arrow = out.find("=> ", pos);
  size_t end = out.find(' ', arrow == std::string::npos ? pos : arrow + 3);
  if (arrow == std::string::npos) return true;
  std::string theirs = out.substr(arrow + 3, end - arrow - 3);
  if (theirs == "not") {
    *err = "'" + command[0] + "' links libc10.so but the loader cannot find it; fix its library path first";
    return false;
  }
  torch->uses_torch = true;
  torch->libc10 = RealPath(theirs);
  return true;
}

bool RunWithShim(const LaunchOptions& options, int* status, std::string* err) {
  std::fflush(nullptr);
  struct sigaction ignore {
  }, old_int{}, old_term{};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGINT, &ignore, &old_int);
  sigaction(SIGTERM, &ignore, &old_term);
  pid_t pid = fork();
  if (pid < 0) {
    *err = std::string("cannot start the command: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    const char* preload = std::getenv("LD_PRELOAD");
    std::string value = options.preload + (preload && *preload ? std::string(":") + preload : "");
    setenv("LD_PRELOAD", value.c_str(), 1);
    setenv("CAUTOGRAD_SHIM", options.shim.c_str(), 1);
    setenv("CAUTOGRAD_LIBC10", options.libc10.c_str(), 1);
    setenv("CAUTOGRAD_SHIM_DIR", options.dir.c_str(), 1);
    setenv("CAUTOGRAD_VALUES", ValuesModeName(options.values), 1);
    setenv("CAUTOGRAD_CALLS", options.calls.c_str(), 1);
    if (options.max_calls >= 0) setenv("CAUTOGRAD_MAX_CALLS", std::to_string(options.max_calls).c_str(), 1);
    if (options.compress) setenv("CAUTOGRAD_COMPRESS", "1", 1);
    std::vector<char*> args;
    for (const std::string& a : options.command) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "cautograd record: cannot run '%s': %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return true;
}

bool AssembleCalls(const std::string& dir, Trace* trace, std::string* err) {
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 7 && name.compare(name.size() - 7, 7, ".stream") == 0) files.push_back(dir + "/" + name);
    }
    closedir(d);
  } else {
    *err = dir + ": cannot read the recorded calls: " + std::strerror(errno);
    return false;
  }
  std::sort(files.begin(), files.end());
  *trace = Trace();
  for (const std::string& file : files)
    if (!ReadStream(file, &trace->calls, &trace->skipped, &trace->meta, err)) return false;
  std::stable_sort(trace->calls.begin(), trace->calls.end(),
                   [](const Call& a, const Call& b) { return a.start_unix_s < b.start_unix_s; });
  std::stable_sort(trace->skipped.begin(), trace->skipped.end(),
                   [](const SkippedCall& a, const SkippedCall& b) { return a.start_unix_s < b.start_unix_s; });
  for (size_t i = 0; i < trace->calls.size(); ++i) trace->calls[i].index = int64_t(i);
  return true;
}

void RemoveCallDir(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
    }
    closedir(d);
  }
  ::rmdir(dir.c_str());
}

}  // namespace cautograd
