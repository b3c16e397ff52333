#include "lib/replay/isolated.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ATen/Parallel.h>

#include "lib/replay/report_json.h"

namespace cautograd {

namespace {

// What the child shares with its parent: the op it is running, so a crash
// can be named.
struct Shared {
  volatile int64_t call = -1;
  volatile int64_t op = -1;
  volatile int op_failed = 0;  // the op at `op` raised
};

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += size_t(n);
  }
  return true;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, size_t(n));
  }
  return out;
}

}  // namespace

bool ReplayIsolated(const Trace& trace, const ReplayOptions& options, ReplayReport* report, std::string* err,
                    ReplayFailure* failure) {
  ReplayFailure ignored;
  if (!failure) failure = &ignored;
  *failure = ReplayFailure();
  void* mem = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    *err = std::string("cannot share memory with the replay process: ") + std::strerror(errno);
    return false;
  }
  Shared* shared = new (mem) Shared();
  int fds[2];
  if (pipe(fds) != 0) {
    munmap(mem, sizeof(Shared));
    *err = std::string("cannot create a pipe: ") + std::strerror(errno);
    return false;
  }
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    munmap(mem, sizeof(Shared));
    *err = std::string("cannot fork the replay process: ") + std::strerror(errno);
    return false;
  }
  if (pid == 0) {
    close(fds[0]);
    // OpenMP's worker threads do not survive fork(): where the parent has
    // already run a parallel kernel (libtorch 2.x wheels use GNU OpenMP),
    // the child's next one waits for them forever. One thread never does;
    // it can round a large reduction differently from the recording, which
    // --check's tolerances allow for.
    at::set_num_threads(1);
    ReplayOptions child = options;
    child.before_op = [shared](int64_t call, int64_t op) {
      shared->call = call;
      shared->op = op;
    };
    child.op_failed = [shared](int64_t, int64_t) { shared->op_failed = 1; };
    ReplayReport r;
    std::string e;
    nlohmann::json out;
    if (Replay(trace, child, &r, &e))
      out = {{"report", ReportToJson(r)}};
    else
      out = {{"error", e}};
    bool ok = WriteAll(fds[1], out.dump());
    close(fds[1]);
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  std::string text = ReadAll(fds[0]);
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int64_t call = shared->call, op = shared->op;
  const bool op_failed = shared->op_failed != 0;
  munmap(mem, sizeof(Shared));
  failure->call = call;
  failure->op = op;

  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    failure->kind = ReplayFailure::Kind::kCrashed;
    failure->signal = sig;
    std::string where = "the replay";
    if (call >= 0 && op >= 0 && call < int64_t(trace.calls.size()) &&
        op < int64_t(trace.calls[size_t(call)].ops.size())) {
      const Op& o = trace.calls[size_t(call)].ops[size_t(op)];
      where = "call " + std::to_string(call) + ", op " + std::to_string(op) + " (" +
              (o.overload.empty() ? o.name : o.name + "." + o.overload) + ")";
    }
    *err = where + " crashed (" + strsignal(sig) + ")" +
           (sig == SIGKILL
                ? ", probably out of memory; lower --max-memory"
                : "; its recorded arguments are invalid for the operator (a tampered or corrupt trace?)");
    return false;
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *err =
        "the replay process ended without a report (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
    return false;
  }
  if (j.contains("error")) {
    if (op_failed) failure->kind = ReplayFailure::Kind::kOpRaised;
    *err = j["error"].is_string() ? j["error"].get<std::string>() : "replay failed";
    return false;
  }
  if (!j.contains("report") || !ReportFromJson(j["report"], report)) {
    *err = "the replay process sent an unreadable report";
    return false;
  }
  return true;
}

}  // namespace cautograd
