#pragma once

// Waits, bounded, for something that happens on another thread.

#include <chrono>
#include <thread>

namespace switchboard::testing {

/// Polls `pred` until it holds or `limit` passes; returns its last answer.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return pred();
}

}  // namespace switchboard::testing
