#pragma once

/// @file switchboard/export.hpp
/// `SWITCHBOARD_API` marks what libswitchboard exports (since 0.4). The library is built with
/// hidden symbols, so a host application sees exactly the declarations marked here: the
/// classes and functions of the public headers, and nothing of the actor system inside.

#if defined(_WIN32)
#if defined(SWITCHBOARD_BUILDING)
#define SWITCHBOARD_API __declspec(dllexport)
#else
#define SWITCHBOARD_API __declspec(dllimport)
#endif
#else
#define SWITCHBOARD_API __attribute__((visibility("default")))
#endif
