#include "weir/thread_name.h"

#include <pthread.h>

#include <string>

namespace weir {

void NameThread(std::thread& thread, std::string_view name) {
  const std::string cut(name.substr(0, 15));
  pthread_setname_np(thread.native_handle(), cut.c_str());
}

}  // namespace weir
