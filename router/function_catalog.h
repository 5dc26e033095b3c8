#pragma once

// What the classifier knows about a function named in a statement's text, by name alone (the
// parser does not resolve names). Only built-in functions are known, and only when called
// unqualified or as pg_catalog.name: a function in any other schema may be user-defined.

#include <string_view>

namespace cutover::router {

struct FunctionVerdict {
  bool read_only = false;        // on the deliberate allow-list of built-ins that never write
  bool nondeterministic = false; // result differs between the two stores (clock, random, sequence)
  const char* write_reason = nullptr;  // for known writers: why (e.g. "changes a sequence")
};

// schema is empty when the call is unqualified.
FunctionVerdict lookupFunction(std::string_view schema, std::string_view name);

// The nondeterministic functions that read the clock (now, clock_timestamp, statement_timestamp,
// transaction_timestamp, timeofday): a comparison with them is a boundary effect, not noise.
bool isClockFunction(std::string_view name);

}  // namespace cutover::router
