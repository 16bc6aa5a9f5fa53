#pragma once

// The message of a caught exception, for logs and error answers.

#include <exception>
#include <string>

namespace switchboard::core {

/// `what()` of the exception in `ep`, or a fixed text for exceptions not derived from
/// std::exception.
inline std::string exception_text(const std::exception_ptr& ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

}  // namespace switchboard::core
