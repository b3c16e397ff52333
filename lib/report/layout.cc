#include "lib/report/layout.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <sstream>
#include <thread>

#include "lib/shim/paths.h"
#include "lib/trace/trace_io.h"

extern char** environ;

namespace cautograd {

namespace {

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// Node index from "v<N>", or -1.
int64_t ViewIndex(const std::string& name, size_t nodes) {
  if (name.size() < 2 || name[0] != 'v') return -1;
  int64_t v = 0;
  for (size_t i = 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || v > int64_t(nodes)) return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v < int64_t(nodes) ? v : -1;
}

// Runs dot on `in`, writing `out`; its stderr goes to `log`.
// *timed_out says a failure was the timeout.
bool RunDotOnce(const DotProgram& dot, double timeout_s, const std::string& in, const std::string& out,
                const std::string& log, bool* timed_out, std::string* err) {
  *timed_out = false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<std::string> args = {dot.path, "-Tplain", "-o", out, in};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, dot.path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    *err = "cannot run '" + dot.path + "': " + std::strerror(rc);
    return false;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  int status = 0;
  for (int delay_us = 200;; delay_us = std::min(delay_us * 2, 20000)) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) {
      *err = std::string("waiting for dot: ") + std::strerror(errno);
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      *timed_out = true;
      *err = "dot took more than " + std::to_string(int(timeout_s)) + " s; draw fewer calls (--calls) or give "
             "it longer (--layout-timeout)";
      return false;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string said;
  ReadFile(log, &said, err);
  while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
  if (const size_t nl = said.rfind('\n'); nl != std::string::npos) said = said.substr(nl + 1);
  *err = WIFSIGNALED(status) ? "dot crashed (signal " + std::to_string(WTERMSIG(status)) + ")"
                             : "dot failed (exit " + std::to_string(WEXITSTATUS(status)) + ")";
  if (!said.empty()) *err += ": " + said;
  return false;
}

}  // namespace

bool ParsePlainLayout(const std::string& plain, size_t nodes, Layout* layout, std::string* err) {
  std::istringstream in(plain);
  std::string line;
  double height_in = 0;
  bool have_graph = false;
  layout->nodes.assign(nodes, NodeBox());
  std::vector<char> placed(nodes, 0);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string kind;
    fields >> kind;
    if (kind == "graph") {
      double scale = 0, w = 0, h = 0;
      if (!(fields >> scale >> w >> h)) break;
      layout->width = w * 72;
      layout->height = h * 72;
      height_in = h;
      have_graph = true;
    } else if (kind == "node") {
      std::string name;
      double x = 0, y = 0, w = 0, h = 0;
      if (!(fields >> name >> x >> y >> w >> h)) break;
      const int64_t v = ViewIndex(name, nodes);
      if (v < 0) continue;
      layout->nodes[size_t(v)] = {x * 72, (height_in - y) * 72, w * 72, h * 72};
      placed[size_t(v)] = 1;
    } else if (kind == "edge") {
      std::string tail, head;
      int64_t n = 0;
      if (!(fields >> tail >> head >> n) || n < 0 || n > 100000) break;
      EdgePath e;
      e.from = ViewIndex(tail, nodes);
      e.to = ViewIndex(head, nodes);
      for (int64_t i = 0; i < 2 * n; ++i) {
        double c = 0;
        if (!(fields >> c)) break;
        e.points.push_back(i % 2 ? (height_in - c) * 72 : c * 72);
      }
      if (e.from >= 0 && e.to >= 0 && int64_t(e.points.size()) == 2 * n) layout->edges.push_back(std::move(e));
    } else if (kind == "stop") {
      break;
    }
  }
  for (size_t i = 0; i < nodes; ++i)
    if (!placed[i]) {
      *err = "dot's output has no position for node " + std::to_string(i);
      return false;
    }
  if (!have_graph) {
    *err = "dot's output has no 'graph' line";
    return false;
  }
  return true;
}

bool FindDot(const std::string& name, DotProgram* dot, std::string* err) {
  const char* how = "install Graphviz (apt-get install graphviz) or name the program with --dot PATH";
  const std::string found = FindProgram(name);
  if (!found.empty() && Executable(found)) {
    dot->path = found;
    return true;
  }
  *err = name.find('/') != std::string::npos ? "cannot run '" + name + "' to lay out graphs; " + how
                                             : "no '" + name + "' on PATH to lay out graphs; " + how;
  return false;
}

void RunLayouts(const DotProgram& dot, std::vector<LayoutJob>* jobs, int parallel,
                const std::function<void(size_t, size_t)>& progress) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp && *tmp ? tmp : "/tmp") + "/cautograd-layout.XXXXXX";
  if (!mkdtemp(dir.data())) {
    const std::string why = std::string("cannot make a temporary directory for dot: ") + std::strerror(errno);
    for (LayoutJob& job : *jobs) job.err = why;
    return;
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  size_t done = 0;
  auto work = [&] {
    for (size_t i; (i = next++) < jobs->size();) {
      LayoutJob& job = (*jobs)[i];
      const std::string base = dir + "/" + std::to_string(i);
      std::string plain;
      bool timed_out = false;
      auto run = [&](const std::string& input, double timeout_s) {
        job.err.clear();
        return WriteFileAtomic(base + ".dot", input, &job.err, Durability::kCrashSafe) &&
               RunDotOnce(dot, timeout_s, base + ".dot", base + ".plain", base + ".log", &timed_out, &job.err);
      };
      bool ran = job.dot_fast.empty() ? run(job.dot, dot.timeout_s)
                                      : run(job.dot, std::min(job.try_s, dot.timeout_s)) ||
                                            (timed_out && run(job.dot_fast, dot.timeout_s));
      if (ran && ReadFile(base + ".plain", &plain, &job.err))
        ParsePlainLayout(plain, job.nodes, &job.layout, &job.err);
      for (const char* ext : {".dot", ".plain", ".log"}) unlink((base + ext).c_str());
      std::lock_guard<std::mutex> lock(mu);
      if (progress) progress(++done, jobs->size());
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::max(1, parallel) && size_t(t) < jobs->size(); ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  rmdir(dir.c_str());
}

}  // namespace cautograd
