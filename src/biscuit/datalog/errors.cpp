#include "biscuit/datalog/errors.h"

namespace biscuit::datalog {

std::string Error::to_string() const {
  if (code == Code::Parse) {
    return "line " + std::to_string(line) + ", column " + std::to_string(column) + ": " + message;
  }
  return message;
}

Error make_error(Error::Code code, std::string message) {
  Error e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

const char* ExecutionError::kind_name() const {
  switch (kind) {
    case Kind::UnknownSymbol:
      return "UnknownSymbol";
    case Kind::UnknownVariable:
      return "UnknownVariable";
    case Kind::InvalidType:
      return "InvalidType";
    case Kind::Overflow:
      return "Overflow";
    case Kind::DivideByZero:
      return "DivideByZero";
    case Kind::InvalidStack:
      return "InvalidStack";
    case Kind::ShadowedVariable:
      return "ShadowedVariable";
    case Kind::UndefinedExtern:
      return "UndefinedExtern";
    case Kind::ExternEvalError:
      return "ExternEvalError";
    case Kind::TooManyFacts:
      return "TooManyFacts";
    case Kind::TooManyIterations:
      return "TooManyIterations";
    case Kind::Timeout:
      return "Timeout";
    case Kind::TooMuchMemory:
      return "TooMuchMemory";
  }
  return "Unknown";
}

std::string ExecutionError::to_string() const {
  switch (kind) {
    case Kind::UnknownSymbol:
      return "unknown symbol id " + std::to_string(id);
    case Kind::UnknownVariable:
      return "unknown variable id " + std::to_string(id);
    case Kind::InvalidType:
      return "invalid type in expression";
    case Kind::Overflow:
      return "integer overflow";
    case Kind::DivideByZero:
      return "division by zero";
    case Kind::InvalidStack:
      return "malformed expression (wrong number of elements on the stack)";
    case Kind::ShadowedVariable:
      return "closure parameter shadows a bound variable";
    case Kind::UndefinedExtern:
      return "undefined extern function '" + name + "'";
    case Kind::ExternEvalError:
      return "extern function '" + name + "' failed: " + message;
    case Kind::TooManyFacts:
      return "too many facts generated";
    case Kind::TooManyIterations:
      return "too many engine iterations";
    case Kind::Timeout:
      return message.empty() ? std::string("spent too much time evaluating Datalog") : message;
    case Kind::TooMuchMemory:
      return message.empty() ? std::string("Datalog evaluation needed more memory than allowed") : message;
  }
  return "execution error";
}

}  // namespace biscuit::datalog
