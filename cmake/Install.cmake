# Install rules: a CMake package `switchboard` for host applications
# (find_package(switchboard 0.1) + target_link_libraries(app PRIVATE switchboard::switchboard)),
# plus the `switchboard` binary.
#
# Included from the top-level CMakeLists.txt after the targets exist. When switchboard is a
# subproject (add_subdirectory / FetchContent), the host owns installation, so nothing here runs.
#
# Components: `runtime` (shared library, binary) and `development` (headers, .so namelink,
# CMake package files). `cmake --install build/release` installs both.

if(NOT PROJECT_IS_TOP_LEVEL)
  return()
endif()

include(CMakePackageConfigHelpers)

set(SWITCHBOARD_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/switchboard"
    CACHE STRING "Where the CMake package files of switchboard are installed (relative to the prefix)")
mark_as_advanced(SWITCHBOARD_INSTALL_CMAKEDIR)

# The installed binary finds the installed library next door, wherever the prefix is.
# The library itself needs no RPATH: its dependencies live in the system's library dirs.
if(TARGET switchboard_cli)
  file(RELATIVE_PATH _switchboard_bin_to_lib
       "/${CMAKE_INSTALL_BINDIR}" "/${CMAKE_INSTALL_LIBDIR}")
  set_target_properties(switchboard_cli PROPERTIES
    INSTALL_RPATH "$ORIGIN/${_switchboard_bin_to_lib}")
  unset(_switchboard_bin_to_lib)
endif()

# --- the library and its headers -----------------------------------------------------------
# Only PUBLIC usage requirements (Boost::json, the include dir) are exported; the PRIVATE
# dependencies of the shared library (CAF, spdlog, cpp-httplib, SQLite, switchboard_build_flags)
# stay inside libswitchboard.so.
install(TARGETS switchboard
  EXPORT switchboardTargets
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    COMPONENT runtime NAMELINK_COMPONENT development
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT development
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT runtime)
# (the include dir comes from the target's $<INSTALL_INTERFACE:...>)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/switchboard/"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/switchboard"
  COMPONENT development
  FILES_MATCHING PATTERN "*.hpp")
install(FILES "${PROJECT_BINARY_DIR}/include/switchboard/version.hpp"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/switchboard"
  COMPONENT development)

# --- the binary ----------------------------------------------------------------------------
if(TARGET switchboard_cli)
  install(TARGETS switchboard_cli
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT runtime)
endif()

# --- the CMake package ---------------------------------------------------------------------
install(EXPORT switchboardTargets
  NAMESPACE switchboard::
  FILE switchboardTargets.cmake
  DESTINATION "${SWITCHBOARD_INSTALL_CMAKEDIR}"
  COMPONENT development)

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/switchboardConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/cmake/switchboardConfig.cmake"
  INSTALL_DESTINATION "${SWITCHBOARD_INSTALL_CMAKEDIR}"
  NO_SET_AND_CHECK_MACRO
  NO_CHECK_REQUIRED_COMPONENTS_MACRO)
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/cmake/switchboardConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion)

install(FILES
    "${PROJECT_BINARY_DIR}/cmake/switchboardConfig.cmake"
    "${PROJECT_BINARY_DIR}/cmake/switchboardConfigVersion.cmake"
  DESTINATION "${SWITCHBOARD_INSTALL_CMAKEDIR}"
  COMPONENT development)
