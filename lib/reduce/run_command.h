// Running the user's command for `reduce --until 'CMD {}'`, as `git bisect
// run` and creduce do: its exit status says whether a candidate is still
// interesting (0) or not.
#pragma once

#include <string>

namespace cautograd {

// `command` with each "{}" replaced by `path`, quoted for the shell.
std::string SubstitutePath(const std::string& command, const std::string& path);

struct CommandResult {
  bool ran = false;       // false: it could not be started (*err says why)
  bool timed_out = false;  // killed after the timeout
  int status = -1;        // exit status; 128 + the signal that ended it
};

// Runs `command` with /bin/sh -c in a process group of its own, its output
// discarded (or appended to `log`, if not empty); kills the group after
// `timeout_s` seconds.
CommandResult RunShell(const std::string& command, double timeout_s, const std::string& log, std::string* err);

}  // namespace cautograd
