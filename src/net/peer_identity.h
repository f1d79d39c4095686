// PeerIdentity: who is on the other end of a mutually-authenticated TLS connection.
// Extracted once per connection right after the handshake (from the verified client
// certificate) and shared by every request on that connection.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace larder::net {

struct PeerIdentity {
  std::string cn;                 // subject CN
  std::vector<std::string> sans;  // "DNS:x", "IP:1.2.3.4", "URI:..", "email:.." in certificate order
  std::string cert_sha256;        // lowercase hex SHA-256 of the DER certificate
  std::string spki_sha256;        // lowercase hex SHA-256 of the DER SubjectPublicKeyInfo
  std::string issuer;             // RFC 2253 issuer DN
  std::string serial;             // uppercase hex, no leading zeros (as `openssl x509 -serial`)
  std::chrono::system_clock::time_point not_after;
};

// Builds a PeerIdentity from one PEM or DER certificate (the first one if several are given).
// The same code runs on the server for every connection.
larder::Result<PeerIdentity> peer_identity_from_pem(std::string_view pem);
larder::Result<PeerIdentity> peer_identity_from_der(std::string_view der);

// True if `peer` matches one entry of an allow-list ("cn:<CN>", "san:<SAN string as in
// PeerIdentity::sans>", "sha256:<hex of DER cert>"; hex compared case-insensitively).
// An empty list allows everyone; an entry with an unknown prefix never matches.
bool peer_allowed(const PeerIdentity& peer, const std::vector<std::string>& allow_list);

}  // namespace larder::net
