#pragma once

#include <memory>

namespace cutover {

// Owns a C handle from the moment it is created: UniqueHandle<event_base, event_base_free>.
template <typename T, void (*Free)(T*)>
struct HandleDeleter {
  void operator()(T* p) const {
    if (p != nullptr) Free(p);
  }
};
template <typename T, void (*Free)(T*)>
using UniqueHandle = std::unique_ptr<T, HandleDeleter<T, Free>>;

}  // namespace cutover
