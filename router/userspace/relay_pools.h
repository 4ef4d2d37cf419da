#pragma once

#include <cstddef>
#include <memory>
#include <vector>

// What every relayed TCP connection needs and gives back when it ends: a copy buffer per
// direction, and a pipe per bulk direction for splice(). Short connections come and go by the
// ten thousand a second; taking these from a free list keeps malloc and pipe2() off their path.
// One per relay thread, used by that thread only, so there is no lock.
namespace svcbox::router::userspace {

// A pipe's two ends, closed on destruction.
class Pipe {
 public:
  Pipe() = default;
  Pipe(int read_end, int write_end) : read_end_(read_end), write_end_(write_end) {}
  Pipe(Pipe&& other) noexcept;
  Pipe& operator=(Pipe&& other) noexcept;
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int readEnd() const { return read_end_; }
  int writeEnd() const { return write_end_; }
  bool valid() const { return read_end_ >= 0; }

 private:
  void reset();
  int read_end_ = -1;
  int write_end_ = -1;
};

class RelayPools {
 public:
  // `keep`: how many free buffers and pipes each list keeps; more are released, so an idle
  // proxy gives back what a burst took.
  RelayPools(size_t buffer_size, size_t pipe_size, size_t keep);

  size_t bufferSize() const { return buffer_size_; }
  std::unique_ptr<char[]> takeBuffer();
  void giveBuffer(std::unique_ptr<char[]> buffer);

  // A non-blocking pipe asked to hold pipe_size bytes (the kernel may give less: over
  // /proc/sys/fs/pipe-max-size); invalid when none can be made (out of descriptors).
  Pipe takePipe();
  // Only an empty pipe may come back: bytes left in it would reach the next connection.
  void giveEmptyPipe(Pipe pipe);

  size_t freeBuffers() const { return buffers_.size(); }
  size_t freePipes() const { return pipes_.size(); }
  size_t pipesMade() const { return pipes_made_; }

 private:
  size_t buffer_size_;
  size_t pipe_size_;
  size_t keep_;
  size_t pipes_made_ = 0;
  std::vector<std::unique_ptr<char[]>> buffers_;
  std::vector<Pipe> pipes_;
};

}  // namespace svcbox::router::userspace
