#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/unique_handle.h"

namespace cutover::proxy {

using EventBasePtr = UniqueHandle<event_base, event_base_free>;
using EventPtr = UniqueHandle<event, event_free>;
using BufferEventPtr = UniqueHandle<bufferevent, bufferevent_free>;
using ListenerPtr = UniqueHandle<evconnlistener, evconnlistener_free>;

}  // namespace cutover::proxy
