// Choosing a backend: manifests read from a build tree's backends/, the
// order they are offered in, matching a program's libc10.
#include "lib/shim/backends.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace cautograd {
namespace {

class BackendsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cautograd-backends-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    exe_ = root_ + "/cautograd";
    std::ofstream(exe_) << "";
    mkdir((root_ + "/backends").c_str(), 0755);
  }
  void TearDown() override { std::system(("rm -rf '" + root_ + "'").c_str()); }

  // A backend directory with a manifest and a program; returns its libc10.
  std::string Add(const std::string& version, const std::string& origin, bool program = true) {
    std::string dir = root_ + "/backends/" + version;
    mkdir(dir.c_str(), 0755);
    std::string libc10 = dir + "/libc10.so";
    std::ofstream(libc10) << "";
    std::ofstream(dir + "/backend.txt") << "# test\nversion=" << version << "\norigin=" << origin
                                        << "\nlibc10=" << libc10 << "\npython=/usr/bin/python3\n";
    if (program) std::ofstream(dir + "/cautograd-backend") << "";
    return libc10;
  }

  std::string root_, exe_;
};

TEST_F(BackendsTest, DebiansComesFirstThenByVersion) {
  Add("2.14.1", "pip");
  Add("2.13.0+cpu", "pip");
  Add("1.13.0", "debian");
  std::vector<Backend> backends;
  std::string err;
  ASSERT_TRUE(FindBackends(exe_, &backends, &err)) << err;
  ASSERT_EQ(backends.size(), 3u);
  EXPECT_EQ(backends[0].version, "1.13.0");
  EXPECT_EQ(backends[1].version, "2.13.0+cpu");
  EXPECT_EQ(backends[2].version, "2.14.1");
  EXPECT_EQ(backends[1].program, root_ + "/backends/2.13.0+cpu/cautograd-backend");
  EXPECT_EQ(BackendList(backends), "1.13.0 (debian), 2.13.0+cpu (pip), 2.14.1 (pip)");
}

TEST_F(BackendsTest, ABackendWithoutItsProgramIsNotOffered) {
  Add("1.13.0", "debian");
  Add("2.13.0+cpu", "pip", /*program=*/false);
  std::vector<Backend> backends;
  std::string err;
  ASSERT_TRUE(FindBackends(exe_, &backends, &err)) << err;
  ASSERT_EQ(backends.size(), 1u);
  EXPECT_EQ(backends[0].version, "1.13.0");
}

TEST_F(BackendsTest, ChoosesByVersionAndSaysWhichThereAre) {
  Add("1.13.0", "debian");
  Add("2.13.0+cpu", "pip");
  std::vector<Backend> backends;
  std::string err;
  ASSERT_TRUE(FindBackends(exe_, &backends, &err));
  EXPECT_EQ(ChooseBackend(backends, "", &err)->version, "1.13.0");
  EXPECT_EQ(ChooseBackend(backends, "2.13.0+cpu", &err)->version, "2.13.0+cpu");
  EXPECT_EQ(ChooseBackend(backends, "2.99", &err), nullptr);
  EXPECT_NE(err.find("no backend for torch '2.99'; this build has 1.13.0 (debian), 2.13.0+cpu (pip)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("scripts/setup.sh --torch-python"), std::string::npos) << err;
  std::vector<Backend> none;
  EXPECT_EQ(ChooseBackend(none, "", &err), nullptr);
}

TEST_F(BackendsTest, MatchesAProgramByItsLibc10ThroughLinks) {
  std::string libc10 = Add("2.13.0+cpu", "pip");
  Add("1.13.0", "debian");
  std::string link = root_ + "/libc10.so.link";
  ASSERT_EQ(symlink(libc10.c_str(), link.c_str()), 0);
  std::vector<Backend> backends;
  std::string err;
  ASSERT_TRUE(FindBackends(exe_, &backends, &err));
  const Backend* b = BackendForLibc10(backends, link);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->version, "2.13.0+cpu");
  EXPECT_EQ(BackendForLibc10(backends, "/usr/lib/no-such-libc10.so"), nullptr);
}

TEST_F(BackendsTest, AManifestWithoutAVersionIsAnError) {
  std::string dir = root_ + "/backends/broken";
  mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/backend.txt") << "origin=pip\n";
  std::vector<Backend> backends;
  std::string err;
  EXPECT_FALSE(FindBackends(exe_, &backends, &err));
  EXPECT_NE(err.find("backend.txt: not a backend manifest"), std::string::npos) << err;
}

}  // namespace
}  // namespace cautograd
