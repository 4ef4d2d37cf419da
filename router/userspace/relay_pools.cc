#include "router/userspace/relay_pools.h"

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace svcbox::router::userspace {

Pipe::Pipe(Pipe&& other) noexcept
    : read_end_(std::exchange(other.read_end_, -1)),
      write_end_(std::exchange(other.write_end_, -1)) {}

Pipe& Pipe::operator=(Pipe&& other) noexcept {
  if (this != &other) {
    reset();
    read_end_ = std::exchange(other.read_end_, -1);
    write_end_ = std::exchange(other.write_end_, -1);
  }
  return *this;
}

Pipe::~Pipe() { reset(); }

void Pipe::reset() {
  if (read_end_ >= 0) ::close(read_end_);
  if (write_end_ >= 0) ::close(write_end_);
  read_end_ = write_end_ = -1;
}

RelayPools::RelayPools(size_t buffer_size, size_t pipe_size, size_t keep)
    : buffer_size_(buffer_size), pipe_size_(pipe_size), keep_(keep) {}

std::unique_ptr<char[]> RelayPools::takeBuffer() {
  if (buffers_.empty()) return std::unique_ptr<char[]>(new char[buffer_size_]);
  auto buffer = std::move(buffers_.back());
  buffers_.pop_back();
  return buffer;
}

void RelayPools::giveBuffer(std::unique_ptr<char[]> buffer) {
  if (buffer && buffers_.size() < keep_) buffers_.push_back(std::move(buffer));
}

Pipe RelayPools::takePipe() {
  if (!pipes_.empty()) {
    Pipe pipe = std::move(pipes_.back());
    pipes_.pop_back();
    return pipe;
  }
  int ends[2];
  if (pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) return Pipe();
  ++pipes_made_;
  // A smaller pipe than asked only means more trips through splice().
  (void)fcntl(ends[1], F_SETPIPE_SZ, static_cast<int>(pipe_size_));
  return Pipe(ends[0], ends[1]);
}

void RelayPools::giveEmptyPipe(Pipe pipe) {
  if (pipe.valid() && pipes_.size() < keep_) pipes_.push_back(std::move(pipe));
}

}  // namespace svcbox::router::userspace
