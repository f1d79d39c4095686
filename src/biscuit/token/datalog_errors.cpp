#include "biscuit/token/datalog_errors.h"

namespace biscuit::detail {

Error from_datalog(const datalog::Error& e, bool decoding) {
  using C = datalog::Error::Code;
  switch (e.code) {
    case C::SymbolTableOverlap:
      return make_error(ErrorCode::SymbolTableOverlap, e.to_string());
    case C::PublicKeyTableOverlap:
      return make_error(ErrorCode::PublicKeyTableOverlap, e.to_string());
    case C::UnknownSymbol:
      return make_error(ErrorCode::UnknownSymbol, e.to_string());
    case C::UnknownPublicKey:
      return make_error(decoding ? ErrorCode::UnknownExternalKey : ErrorCode::Language, e.to_string());
    case C::Version:
      return make_error(ErrorCode::Version, e.to_string());
    case C::InvalidTerm:
    case C::InvalidRule:
    case C::LimitExceeded:
      return make_error(decoding ? ErrorCode::BlockDeserialization : ErrorCode::Language, e.to_string());
    case C::Parse:
    case C::UnboundParameter:
    case C::InvalidParameter:
      return make_error(ErrorCode::Language, e.to_string());
  }
  return make_error(ErrorCode::Internal, e.to_string());
}

Error from_execution(const datalog::ExecutionError& e) {
  using K = datalog::ExecutionError::Kind;
  switch (e.kind) {
    case K::TooManyFacts:
      return make_error(ErrorCode::TooManyFacts, "run limit: too many facts");
    case K::TooManyIterations:
      return make_error(ErrorCode::TooManyIterations, "run limit: too many iterations");
    case K::Timeout:
      return make_error(
          ErrorCode::Timeout,
          "run limit: " + (e.message.empty() ? std::string("authorization took too long") : e.message));
    case K::TooMuchMemory:
      return make_error(ErrorCode::TooMuchMemory, "run limit: " + e.to_string());
    default:
      break;
  }
  Error out = make_error(ErrorCode::Execution, e.to_string());
  out.detail = e.kind_name();
  switch (e.kind) {
    case K::UndefinedExtern:
      out.detail_data = json_quote(e.name);
      break;
    case K::ExternEvalError:
      out.detail_data = "[" + json_quote(e.name) + "," + json_quote(e.message) + "]";
      break;
    case K::UnknownSymbol:
    case K::UnknownVariable:
      out.detail_data = std::to_string(e.id);
      break;
    default:
      break;
  }
  return out;
}

}  // namespace biscuit::detail
