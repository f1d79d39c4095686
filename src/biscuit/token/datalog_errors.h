// Mapping of Datalog-layer errors into biscuit::Error (internal to libbiscuit).
#pragma once

#include "biscuit/datalog/errors.h"
#include "biscuit/error.h"

namespace biscuit::detail {

// `decoding`: the error arose while reading a token (format errors) rather than while
// building one from text (language errors).
Error from_datalog(const datalog::Error& e, bool decoding);
Error from_execution(const datalog::ExecutionError& e);

}  // namespace biscuit::detail
