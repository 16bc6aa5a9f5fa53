#include "adapters/http/content_coding.hpp"

#include <brotli/decode.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>

namespace switchboard::adapters::http {

namespace {

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  std::string out{s};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

inflate_result zlib_inflate(std::string_view data, std::size_t max_bytes, bool gzip) {
  inflate_result r;
  z_stream z{};
  // 15 window bits; +16 reads only a gzip wrapper, plain 15 only a zlib one.
  if (inflateInit2(&z, gzip ? 15 + 16 : 15) != Z_OK) {
    r.error = "cannot start the decoder";
    return r;
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  std::array<char, 16 * 1024> chunk{};
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    z.avail_out = static_cast<uInt>(chunk.size());
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      r.error = z.msg != nullptr ? z.msg : "invalid data";
      if (rc == Z_BUF_ERROR)
        r.error = "the data ends before the compressed stream does";
      break;
    }
    const auto produced = chunk.size() - z.avail_out;
    if (r.body.size() + produced > max_bytes) {
      r.too_large = true;
      break;
    }
    r.body.append(chunk.data(), produced);
  }
  inflateEnd(&z);
  if (!r.error.empty() || r.too_large)
    r.body.clear();
  return r;
}

inflate_result brotli_inflate(std::string_view data, std::size_t max_bytes) {
  inflate_result r;
  auto* dec = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  if (dec == nullptr) {
    r.error = "cannot start the decoder";
    return r;
  }
  auto* next_in = reinterpret_cast<const std::uint8_t*>(data.data());
  std::size_t avail_in = data.size();
  std::array<std::uint8_t, 16 * 1024> chunk{};
  for (;;) {
    auto* next_out = chunk.data();
    std::size_t avail_out = chunk.size();
    const auto rc =
        BrotliDecoderDecompressStream(dec, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    const auto produced = chunk.size() - avail_out;
    if (r.body.size() + produced > max_bytes) {
      r.too_large = true;
      break;
    }
    r.body.append(reinterpret_cast<const char*>(chunk.data()), produced);
    if (rc == BROTLI_DECODER_RESULT_SUCCESS)
      break;
    if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) {
      r.error = "the data ends before the compressed stream does";
      break;
    }
    if (rc == BROTLI_DECODER_RESULT_ERROR) {
      r.error = BrotliDecoderErrorString(BrotliDecoderGetErrorCode(dec));
      break;
    }
  }
  BrotliDecoderDestroyInstance(dec);
  if (!r.error.empty() || r.too_large)
    r.body.clear();
  return r;
}

}  // namespace

std::optional<content_coding> parse_content_coding(std::string_view header) {
  const auto v = lower_trimmed(header);
  if (v.empty() || v == "identity")
    return content_coding::identity;
  if (v == "gzip" || v == "x-gzip")
    return content_coding::gzip;
  if (v == "deflate")
    return content_coding::deflate;
  if (v == "br")
    return content_coding::br;
  return std::nullopt;
}

inflate_result inflate_body(content_coding coding, std::string_view data, std::size_t max_bytes) {
  switch (coding) {
    case content_coding::gzip: return zlib_inflate(data, max_bytes, true);
    case content_coding::deflate: return zlib_inflate(data, max_bytes, false);
    case content_coding::br: return brotli_inflate(data, max_bytes);
    case content_coding::identity: break;
  }
  inflate_result r;
  if (data.size() > max_bytes)
    r.too_large = true;
  else
    r.body = std::string{data};
  return r;
}

}  // namespace switchboard::adapters::http
