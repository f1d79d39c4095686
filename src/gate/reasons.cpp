#include "gate/reasons.h"

#include <ctime>

namespace larder::gate {
namespace {

std::string quoted_check(const std::string& check) {
  return "(the token's check: `" + check + "`)";
}

}  // namespace

std::string describe_span(std::chrono::system_clock::duration span) {
  using namespace std::chrono;
  auto total = duration_cast<seconds>(span).count();
  if (total < 0) total = -total;
  const long long days = total / 86400, hours = total % 86400 / 3600, minutes = total % 3600 / 60,
                  secs = total % 60;
  if (days > 0) {
    std::string out = std::to_string(days) + (days == 1 ? " day" : " days");
    if (hours > 0) out += " " + std::to_string(hours) + " h";
    return out;
  }
  if (hours > 0)
    return std::to_string(hours) + " h" + (minutes > 0 ? " " + std::to_string(minutes) + " min" : "");
  if (minutes > 0) return std::to_string(minutes) + " min";
  return std::to_string(secs) + " s";
}

std::string describe_utc(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string expired_reason(std::chrono::system_clock::time_point expired_at,
                           std::chrono::system_clock::time_point now) {
  return "token expired at " + describe_utc(expired_at) + " (" + describe_span(now - expired_at) +
         " ago); ask its issuer for a new token";
}

std::string not_yet_valid_reason(std::chrono::system_clock::time_point valid_from,
                                 std::chrono::system_clock::time_point now) {
  return "token is not valid yet: it is valid from " + describe_utc(valid_from) + " (in " +
         describe_span(valid_from - now) + "); retry then, or ask its issuer for a token valid now";
}

std::string outside_validity_reason(const std::string& check) {
  return "token is outside its validity period " + quoted_check(check) + "; ask its issuer for a new token";
}

std::string other_certificate_reason(const net::PeerIdentity* peer, const std::string& check) {
  if (peer == nullptr) {
    return "token is bound to a client certificate and this connection presents none; connect with the "
           "certificate it was issued for " +
           quoted_check(check);
  }
  return "token is bound to another client certificate than this connection's (CN=" + peer->cn +
         "); connect with the certificate it was issued for, or get a token bound to this one " +
         quoted_check(check);
}

std::string other_audience_reason(const std::string& audience, const std::string& check) {
  return "token is meant for another server, not this one (audience \"" + audience +
         "\"); use a token issued for this server " + quoted_check(check);
}

std::string failed_check_reason(std::size_t block, const std::string& check) {
  return "the token does not allow this call: its check in block " + std::to_string(block) + " failed " +
         quoted_check(check);
}

std::string unknown_root_key_reason(std::optional<uint32_t> key_id, bool several_keys_trusted) {
  if (!key_id) {
    return several_keys_trusted
               ? "token names no root key id, and none of the root keys this server trusts "
                 "signed it: it was signed by an unknown or retired root key, or altered after "
                 "signing; ask its issuer for a new token"
               : "token is signed by an unknown root key; ask for a token signed by a root "
                 "key this server trusts";
  }
  return "token is signed by an unknown or retired root key (key id " + std::to_string(*key_id) +
         "): this server does not trust it; ask for a token signed by a current root key";
}

std::string bad_signature_reason(std::optional<uint32_t> key_id) {
  return std::string("token signature does not verify with the root key it names") +
         (key_id ? " (key id " + std::to_string(*key_id) + ")" : std::string()) +
         ": it was signed by an unknown or retired root key, or altered after signing; ask its issuer for a "
         "new "
         "token";
}

std::string altered_token_reason(std::optional<uint32_t> block) {
  return std::string("token was altered after it was signed: ") +
         (block ? "the signature of its block " + std::to_string(*block) : std::string("its seal")) +
         " does not verify; use the token as its issuer or holder produced it";
}

std::string revoked_reason(const std::string& revocation_id) {
  return "token has been revoked (revocation id " + revocation_id + "); ask its issuer for a new token";
}

std::string tainted_token_reason(const std::string& tool) {
  return "token is tainted: it has read sensitive data, so egress tools such as " + tool +
         " (which send data off this machine) refuse it; use a token that has not read patient data";
}

std::string tainted_lineage_reason(const std::string& tool) {
  return "token is tainted: a token of its lineage has read sensitive data, so egress tools such as " + tool +
         " refuse every token of it (including copies taken before the read); use a token that has not read "
         "patient data";
}

const char* refusal_kind(std::string_view lock, std::string_view reason) {
  auto has = [&](std::string_view part) { return reason.find(part) != std::string_view::npos; };
  auto starts = [&](std::string_view part) { return reason.substr(0, part.size()) == part; };
  if (lock == "mtls") return "no_certificate";
  if (lock == "taint") return starts("audit log unavailable") ? "audit_unavailable" : "tainted";
  if (lock == "policy") return "denied";
  if (lock == "sql-guard") return "refused";
  if (lock == "limits") return has("concurrent") ? "concurrency" : "rate";
  if (lock == "database") {
    if (has("unavailable")) return "unavailable";
    if (has("max_query_cost")) return "too_costly";
    if (has("server is stopping")) return "shutdown";
    if (has("deadline")) return "timeout";
    if (has("caller cancelled")) return "cancelled";
    return "statement";
  }
  if (lock == "biscuit") {
    if (starts("no Biscuit token")) return "missing";
    if (starts("the Authorization header is not")) return "not_bearer";
    if (starts("token expired")) return "expired";
    if (starts("token is not valid yet")) return "not_yet_valid";
    if (starts("token is outside its validity")) return "validity";
    if (starts("token is bound to")) return "other_certificate";
    if (starts("token is meant for another server")) return "other_audience";
    if (starts("the token does not allow this call")) return "failed_check";
    if (starts("token is signed by an unknown") || starts("token names no root key id"))
      return "unknown_root_key";
    if (starts("token signature does not verify")) return "bad_signature";
    if (starts("token was altered")) return "altered";
    if (starts("token has been revoked")) return "revoked";
    if (has("only the server may assert")) return "reserved_predicate";
    return "malformed";
  }
  return "other";
}

}  // namespace larder::gate
