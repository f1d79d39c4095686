#include "agent/http.h"
#include "base/text.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace larder::agent {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return std::string(s.substr(b, e - b));
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* reply = static_cast<HttpReply*>(user);
  std::string_view line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    reply->headers.clear();  // a new response (after 100-continue or a redirect)
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    reply->headers.emplace_back(ascii_lower(trim(line.substr(0, colon))), trim(line.substr(colon + 1)));
  }
  return size * count;
}

// libcurl calls this at least every second while it waits, and often while data moves;
// a non-zero return aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const CancellationToken*>(user);
  return cancel != nullptr && cancel->cancelled() ? 1 : 0;
}

void global_init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

}  // namespace

std::optional<std::string> HttpReply::header(std::string_view name) const {
  auto wanted = ascii_lower(name);
  for (const auto& [k, v] : headers)
    if (ascii_lower(k) == wanted) return v;
  return std::nullopt;
}

CurlHttpClient::CurlHttpClient() {
  global_init_once();
  handle_ = curl_easy_init();
}

CurlHttpClient::~CurlHttpClient() {
  if (handle_) curl_easy_cleanup(static_cast<CURL*>(handle_));
}

Result<HttpReply> CurlHttpClient::post(const std::string& url, const HeaderList& headers,
                                       const std::string& body, const HttpTimeouts& timeouts,
                                       const CancellationToken* cancel) {
  auto* curl = static_cast<CURL*>(handle_);
  if (!curl) return make_error("llm.network", "could not initialise libcurl");
  curl_easy_reset(curl);
  HttpReply reply;
  struct curl_slist* list = nullptr;
  for (const auto& [k, v] : headers) list = curl_slist_append(list, (k + ": " + v).c_str());
  // Without this libcurl sends "Expect: 100-continue" for large bodies and waits for it.
  list = curl_slist_append(list, "Expect:");
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POST, 1L);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &reply);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeouts.connect.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeouts.total.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  if (cancel) {
    if (cancel->cancelled()) {
      curl_slist_free_all(list);
      return make_error("llm.cancelled", "the request to " + url + " was cancelled");
    }
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, const_cast<CancellationToken*>(cancel));
  }
  // Proxies: libcurl reads HTTPS_PROXY / https_proxy / http_proxy / NO_PROXY itself when
  // CURLOPT_PROXY is unset, which is exactly the behaviour we want.
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(list);
  if (rc == CURLE_ABORTED_BY_CALLBACK)
    return make_error("llm.cancelled", "the request to " + url + " was cancelled");
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return make_error(rc == CURLE_OPERATION_TIMEDOUT ? "llm.timeout" : "llm.network",
                      "request to " + url + " failed: " + detail +
                          " (check --base-url, network access and HTTPS_PROXY/NO_PROXY)");
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  reply.status = static_cast<int>(status);
  return reply;
}

}  // namespace larder::agent
