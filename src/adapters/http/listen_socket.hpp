#pragma once

// What the Twilio emulator's HTTP server does to cpp-httplib's listening socket (the daemon's
// own server, http_listener, sets the same options itself).
//
// - SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which lets a second server
//   bind the same port and silently take half the connections. SO_REUSEADDR alone allows
//   quick restarts.
// - A backlog as long as the system allows: Debian builds cpp-httplib 0.11.4 with a listen
//   backlog of 5 (CPPHTTPLIB_LISTEN_BACKLOG is compiled into the library). Thirty-two clients
//   connecting at once overflow it; the kernel then drops the last step of some handshakes, and
//   those clients lose their first request (httplib's "Read" error, about 1.2 s later). Linux
//   takes a second listen() on a listening socket as its new backlog.

#include <sys/socket.h>

#include <atomic>
#include <functional>

namespace switchboard::adapters::http {

class listen_socket {
public:
  /// For httplib::Server::set_socket_options: sets the options and notes the socket.
  std::function<void(int)> options() {
    return [this](int sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      fd_ = sock;
    };
  }

  /// Once the server is bound (and so listening): the longest backlog the system allows.
  void widen_backlog() const {
    if (const int fd = fd_; fd >= 0)
      ::listen(fd, SOMAXCONN);
  }

private:
  std::atomic<int> fd_{-1};
};

}  // namespace switchboard::adapters::http
