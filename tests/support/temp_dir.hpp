#pragma once

// A fresh directory per test (mkdtemp: unique across processes, so ctest -j is safe),
// removed with everything in it when the test ends.

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <system_error>

#include <stdlib.h>

namespace switchboard::testing {

class temp_dir {
public:
  explicit temp_dir(const std::string& prefix = "switchboard-test") {
    auto pattern = (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// A path inside the directory.
  std::string file(const std::string& name) const { return (path / name).string(); }

  std::filesystem::path path;
};

}  // namespace switchboard::testing
