#include "lib/shim/backends.h"

#include <algorithm>
#include <fstream>

#include <dirent.h>

#include "lib/shim/paths.h"

namespace cautograd {

namespace {

bool ReadManifest(const std::string& dir, Backend* b, std::string* err) {
  std::string path = dir + "/backend.txt";
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "version") b->version = value;
    if (key == "origin") b->origin = value;
    if (key == "libc10") b->libc10 = value;
    if (key == "python") b->python = value;
  }
  if (b->version.empty() || b->libc10.empty()) {
    *err = path + ": not a backend manifest (no version or libc10); rebuild cautograd";
    return false;
  }
  b->dir = dir;
  b->program = dir + "/cautograd-backend";
  b->shim = dir + "/libcautograd_shim.so";
  return true;
}

}  // namespace

bool FindBackends(const std::string& exe, std::vector<Backend>* backends, std::string* err) {
  backends->clear();
  std::string here = DirName(RealPath(exe));
  for (const std::string& root : {here + "/backends", here + "/../lib/cautograd/backends"}) {
    DIR* d = opendir(root.c_str());
    if (!d) continue;
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || !IsFile(root + "/" + name + "/backend.txt")) continue;
      Backend b;
      if (!ReadManifest(root + "/" + name, &b, err)) {
        closedir(d);
        return false;
      }
      if (IsFile(b.program)) backends->push_back(b);
    }
    closedir(d);
    if (!backends->empty()) break;
  }
  std::sort(backends->begin(), backends->end(), [](const Backend& a, const Backend& b) {
    if ((a.origin == "debian") != (b.origin == "debian")) return a.origin == "debian";
    return a.version < b.version;
  });
  return true;
}

bool FindPreload(const std::string& exe, std::string* path, std::string* err) {
  std::string dir = DirName(RealPath(exe));
  for (const std::string& candidate :
       {dir + "/libcautograd_preload.so", dir + "/../lib/cautograd/libcautograd_preload.so"}) {
    if (IsFile(candidate)) {
      *path = RealPath(candidate);
      return true;
    }
  }
  *err = "cannot find libcautograd_preload.so next to " + RealPath(exe) +
         " or in ../lib/cautograd; build the 'cautograd_preload' target or reinstall cautograd";
  return false;
}

std::string BackendList(const std::vector<Backend>& backends) {
  std::string out;
  for (const Backend& b : backends) out += (out.empty() ? "" : ", ") + b.version + " (" + b.origin + ")";
  return out.empty() ? "none" : out;
}

const Backend* ChooseBackend(const std::vector<Backend>& backends, const std::string& want,
                             std::string* err) {
  if (backends.empty()) {
    *err = "this cautograd was built with no libtorch backend; " + HowToAddBackend("PYTHON");
    return nullptr;
  }
  if (want.empty()) return &backends[0];
  for (const Backend& b : backends)
    if (b.version == want) return &b;
  *err = "no backend for torch '" + want + "'; this build has " + BackendList(backends) + ". " +
         HowToAddBackend("PYTHON");
  return nullptr;
}

const Backend* BackendForLibc10(const std::vector<Backend>& backends, const std::string& libc10) {
  std::string real = RealPath(libc10);
  for (const Backend& b : backends)
    if (b.libc10 == real) return &b;
  return nullptr;
}

std::string HowToAddBackend(const std::string& python) {
  return "to add a backend for the torch that " + python + " imports, configure with 'scripts/setup.sh " +
         "--torch-python " + python + "' and build again";
}

}  // namespace cautograd
