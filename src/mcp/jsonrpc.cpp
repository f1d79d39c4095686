#include "mcp/jsonrpc.h"

#include <variant>

namespace larder::mcp {

json RpcError::to_json() const {
  json j = {{"code", code}, {"message", message}};
  if (data) j["data"] = *data;
  return j;
}

RpcError RpcError::parse_error(std::string detail) {
  return {error_code::kParseError, "Parse error: " + std::move(detail), std::nullopt};
}
RpcError RpcError::invalid_request(std::string detail) {
  return {error_code::kInvalidRequest, "Invalid Request: " + std::move(detail), std::nullopt};
}
RpcError RpcError::method_not_found(std::string_view method) {
  return {error_code::kMethodNotFound, "Method not found: " + std::string(method), std::nullopt};
}
RpcError RpcError::invalid_params(std::string detail) {
  return {error_code::kInvalidParams, "Invalid params: " + std::move(detail), std::nullopt};
}
RpcError RpcError::internal(std::string detail) {
  return {error_code::kInternalError, "Internal error: " + std::move(detail), std::nullopt};
}

namespace {

bool valid_id(const json& id) {
  if (id.is_string()) return true;
  if (id.is_number_integer() || id.is_number_unsigned()) return true;
  return false;
}

}  // namespace

std::variant<Message, ClassifyFailure> classify(const json& value) {
  if (!value.is_object()) {
    return ClassifyFailure{RpcError::invalid_request("a JSON-RPC message must be an object"), nullptr};
  }
  json recovered = nullptr;
  if (auto it = value.find("id"); it != value.end() && valid_id(*it)) recovered = *it;
  auto fail = [&](std::string why) {
    return ClassifyFailure{RpcError::invalid_request(std::move(why)), recovered};
  };

  auto jv = value.find("jsonrpc");
  if (jv == value.end() || !jv->is_string() || jv->get_ref<const std::string&>() != "2.0") {
    return fail("\"jsonrpc\" must be the string \"2.0\"");
  }
  const bool has_id = value.contains("id");
  const bool has_method = value.contains("method");
  const bool has_result = value.contains("result");
  const bool has_error = value.contains("error");

  Message m;
  if (has_method) {
    const json& method = value["method"];
    if (!method.is_string()) return fail("\"method\" must be a string");
    if (has_result || has_error) return fail("a request must not carry \"result\" or \"error\"");
    m.method = method.get<std::string>();
    if (auto p = value.find("params"); p != value.end()) {
      if (!p->is_object() && !p->is_array()) return fail("\"params\" must be an object or an array");
      m.params = *p;
    }
    if (has_id) {
      const json& id = value["id"];
      if (!valid_id(id)) return fail("\"id\" must be a string or an integer");
      m.kind = MessageKind::kRequest;
      m.id = id;
    } else {
      m.kind = MessageKind::kNotification;
    }
    return m;
  }
  if (has_result == has_error)
    return fail("a message needs \"method\", or exactly one of \"result\" and \"error\"");
  if (!has_id) return fail("a response needs an \"id\"");
  m.id = value["id"];
  if (has_result) {
    m.kind = MessageKind::kResult;
    m.result = value["result"];
    return m;
  }
  const json& err = value["error"];
  if (!err.is_object() || !err.contains("code") || !err["code"].is_number_integer()) {
    return fail("\"error\" must be an object with an integer \"code\"");
  }
  m.kind = MessageKind::kError;
  m.error.code = err["code"].get<int>();
  if (auto msg = err.find("message"); msg != err.end() && msg->is_string())
    m.error.message = msg->get<std::string>();
  if (auto d = err.find("data"); d != err.end()) m.error.data = *d;
  return m;
}

std::variant<json, RpcError> parse_json(std::string_view text, std::size_t max_depth) {
  auto value = larder::parse_json_bounded(text, max_depth);
  if (!value) {
    return RpcError::parse_error(value.error().code == "json.too_deep" ? value.error().message
                                                                       : "the body is not valid JSON");
  }
  return std::move(*value);
}

json make_request(const json& id, std::string_view method, const json& params) {
  json j = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) j["params"] = params;
  return j;
}

json make_notification(std::string_view method, const json& params) {
  json j = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) j["params"] = params;
  return j;
}

json make_result(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json make_error_response(const json& id, const RpcError& error) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", error.to_json()}};
}

std::string id_key(const json& id) {
  if (id.is_string()) return "s:" + id.get<std::string>();
  return "n:" + id.dump();
}

}  // namespace larder::mcp
