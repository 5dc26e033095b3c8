#pragma once

// RAII owners of libpq's C handles: a PGconn or PGresult is owned from the moment libpq returns it.

#include <libpq-fe.h>

#include "common/unique_handle.h"

namespace cutover::pgclient {

using PgConnPtr = UniqueHandle<PGconn, PQfinish>;
using PgResultPtr = UniqueHandle<PGresult, PQclear>;

}  // namespace cutover::pgclient
