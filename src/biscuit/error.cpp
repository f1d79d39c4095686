#include "biscuit/error.h"

#include <sstream>

namespace biscuit {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static const char* hex = "0123456789abcdef";
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string checks_json(const std::vector<FailedCheck>& checks) {
  std::string out = "[";
  for (std::size_t i = 0; i < checks.size(); ++i) {
    const auto& c = checks[i];
    if (i) out += ",";
    if (c.authorizer) {
      out += "{\"Authorizer\":{\"check_id\":" + std::to_string(c.check_id) +
             ",\"rule\":" + json_string(c.rule) + "}}";
    } else {
      out += "{\"Block\":{\"block_id\":" + std::to_string(c.block_id) +
             ",\"check_id\":" + std::to_string(c.check_id) + ",\"rule\":" + json_string(c.rule) + "}}";
    }
  }
  return out + "]";
}

std::string format_json(const std::string& inner) {
  return "{\"Format\":" + inner + "}";
}
std::string tagged(const char* tag, const std::string& msg) {
  return std::string("{\"") + tag + "\":" + json_string(msg) + "}";
}

}  // namespace

std::string json_quote(const std::string& s) {
  return json_string(s);
}

Error make_error(ErrorCode code, std::string message) {
  Error e;
  e.code = code;
  e.message = std::move(message);
  return e;
}

const char* Error::category() const {
  switch (code) {
    case ErrorCode::InvalidSignature:
    case ErrorCode::InvalidSignatureFormat:
    case ErrorCode::SealedSignature:
    case ErrorCode::EmptyKeys:
    case ErrorCode::UnknownPublicKey:
    case ErrorCode::Deserialization:
    case ErrorCode::Serialization:
    case ErrorCode::BlockDeserialization:
    case ErrorCode::BlockSerialization:
    case ErrorCode::Version:
    case ErrorCode::InvalidSignatureSize:
    case ErrorCode::BlockSignatureDeserialization:
    case ErrorCode::InvalidKeySize:
    case ErrorCode::InvalidKey:
    case ErrorCode::UnknownExternalKey:
    case ErrorCode::UnknownSymbol:
    case ErrorCode::ExistingPublicKey:
    case ErrorCode::SymbolTableOverlap:
    case ErrorCode::PublicKeyTableOverlap:
      return "Format";
    case ErrorCode::AppendOnSealed:
    case ErrorCode::AlreadySealed:
    case ErrorCode::InvalidBlockIndex:
    case ErrorCode::InvalidArgument:
    case ErrorCode::Internal:
      return "Token";
    case ErrorCode::Language:
      return "Language";
    case ErrorCode::Unauthorized:
    case ErrorCode::NoMatchingPolicy:
    case ErrorCode::InvalidBlockRule:
      return "FailedLogic";
    case ErrorCode::Execution:
      return "Execution";
    case ErrorCode::TooManyFacts:
    case ErrorCode::TooManyIterations:
    case ErrorCode::Timeout:
    case ErrorCode::TooMuchMemory:
      return "RunLimit";
  }
  return "Token";
}

std::string Error::to_json() const {
  switch (code) {
    case ErrorCode::InvalidSignature:
      return format_json("{\"Signature\":" + tagged("InvalidSignature", detail.empty() ? message : detail) +
                         "}");
    case ErrorCode::InvalidSignatureFormat:
      return format_json("{\"Signature\":\"InvalidFormat\"}");
    case ErrorCode::SealedSignature:
      return format_json("\"SealedSignature\"");
    case ErrorCode::EmptyKeys:
      return format_json("\"EmptyKeys\"");
    case ErrorCode::UnknownPublicKey:
      return format_json("\"UnknownPublicKey\"");
    case ErrorCode::Deserialization:
      return format_json(tagged("DeserializationError", message));
    case ErrorCode::Serialization:
      return format_json(tagged("SerializationError", message));
    case ErrorCode::BlockDeserialization:
      return format_json(tagged("BlockDeserializationError", message));
    case ErrorCode::BlockSerialization:
      return format_json(tagged("BlockSerializationError", message));
    case ErrorCode::Version:
      return format_json(tagged("Version", message));
    case ErrorCode::InvalidSignatureSize:
    case ErrorCode::BlockSignatureDeserialization:
      return format_json(tagged("BlockSignatureDeserializationError", detail.empty() ? message : detail));
    case ErrorCode::InvalidKeySize:
      return format_json(tagged("InvalidKeySize", message));
    case ErrorCode::InvalidKey:
      return format_json(tagged("InvalidKey", message));
    case ErrorCode::UnknownExternalKey:
      return format_json("\"UnknownExternalKey\"");
    case ErrorCode::UnknownSymbol:
      return format_json(tagged("UnknownSymbol", message));
    case ErrorCode::ExistingPublicKey:
      return format_json(tagged("ExistingPublicKey", message));
    case ErrorCode::SymbolTableOverlap:
      return format_json("\"SymbolTableOverlap\"");
    case ErrorCode::PublicKeyTableOverlap:
      return format_json("\"PublicKeyTableOverlap\"");
    case ErrorCode::AppendOnSealed:
      return "\"AppendOnSealed\"";
    case ErrorCode::AlreadySealed:
      return "\"AlreadySealed\"";
    case ErrorCode::InvalidBlockIndex:
      return tagged("InvalidBlockIndex", message);
    case ErrorCode::InvalidArgument:
      return tagged("ConversionError", message);
    case ErrorCode::Internal:
      return "\"InternalError\"";
    case ErrorCode::Language:
      return tagged("Language", message);
    case ErrorCode::Unauthorized: {
      std::string p = "null";
      if (policy) {
        p = std::string("{\"") + (policy->allow ? "Allow" : "Deny") + "\":" + std::to_string(policy->index) +
            "}";
      }
      return "{\"FailedLogic\":{\"Unauthorized\":{\"policy\":" + p + ",\"checks\":" + checks_json(checks) +
             "}}}";
    }
    case ErrorCode::NoMatchingPolicy:
      return "{\"FailedLogic\":{\"NoMatchingPolicy\":{\"checks\":" + checks_json(checks) + "}}}";
    case ErrorCode::InvalidBlockRule:
      return "{\"FailedLogic\":{\"InvalidBlockRule\":[" + std::to_string(rule_id) + "," + json_string(rule) +
             "]}}";
    case ErrorCode::Execution:
      if (!detail_data.empty()) return "{\"Execution\":{" + json_string(detail) + ":" + detail_data + "}}";
      return "{\"Execution\":" + json_string(detail.empty() ? message : detail) + "}";
    case ErrorCode::TooManyFacts:
      return "{\"RunLimit\":\"TooManyFacts\"}";
    case ErrorCode::TooManyIterations:
      return "{\"RunLimit\":\"TooManyIterations\"}";
    case ErrorCode::Timeout:
      return "{\"RunLimit\":\"Timeout\"}";
    case ErrorCode::TooMuchMemory:
      return "{\"RunLimit\":\"TooMuchMemory\"}";
  }
  return "\"InternalError\"";
}

std::string Error::to_string() const {
  std::ostringstream out;
  out << category() << " error: " << message;
  if (code == ErrorCode::Unauthorized || code == ErrorCode::NoMatchingPolicy) {
    if (policy) out << "\n  matched policy: " << (policy->allow ? "allow" : "deny") << " #" << policy->index;
    for (const auto& c : checks) {
      if (c.authorizer) {
        out << "\n  failed authorizer check #" << c.check_id << ": " << c.rule;
      } else {
        out << "\n  failed check #" << c.check_id << " of block " << c.block_id << ": " << c.rule;
      }
    }
  }
  return out.str();
}

}  // namespace biscuit
