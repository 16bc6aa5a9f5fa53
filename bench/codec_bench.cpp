// codec_bench: what decoding one CloudEvent costs, and what the number checks add to parsing.
//
// Since 0.4 the codec parses with its own Boost.JSON handler (core::codec::parse_json_checked),
// which notes integer literals beyond 64 bits; before, it used boost::json::parser. Both build
// the same value, so the baseline runs in the same program:
//   parser          boost::json::parser, the codec's former parse step (same depth, scratch)
//   checked         core::codec::parse_json_checked, today's parse step
//   decode          switchboard::decode_event(text): parse, then every rule (payload walk with
//                   the non-finite check included)
// over two documents: `typical` (a 0.5 KB event, the routing bench's shape) and `numbers` (the
// same attributes, `data` holding 64 doubles and 64 integers: what the checks touch most).
// Variants are interleaved per repetition so that machine noise hits them alike.
//
// Prints one JSON object per line on stdout, a summary on stderr. Options (--name=value):
//   --events=200000 (decodes per variant and repetition) --reps=7

#include "bench_util.hpp"

#include "core/event_codec_rules.hpp"
#include "switchboard/event.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace {

namespace json = boost::json;

std::string typical_event() {
  return R"({"specversion":"1.0","id":"9f1c2e0a-5d1b-4c1e-9a51-0c2f3b7a8d11",)"
         R"("source":"crm/applications","type":"application.status_changed",)"
         R"("subject":"application/A-1001","time":"2026-11-23T14:00:00Z",)"
         R"("entitykind":"application","entityid":"A-1001","entityversion":7,)"
         R"("correlationid":"c-42","causationid":"9f1c2e0a-0000-4c1e-9a51-0c2f3b7a8d10",)"
         R"("traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",)"
         R"("data":{"status":"approved","amount":25000.5,"dealer":"D-17","location":"L-3",)"
         R"("manager":{"id":"M-9","name":"Ada Lovelace"},"tags":["web","priority"]}})";
}

std::string numbers_event() {
  std::string data = R"({"d":[)";
  for (int i = 0; i < 64; ++i)
    data += (i ? "," : "") + std::to_string(i) + "." + std::to_string(i * 7 % 100) + "e3";
  data += R"(],"i":[)";
  for (int i = 0; i < 64; ++i)
    data += (i ? "," : "") + std::to_string(1000003LL * i * i);
  data += "]}";
  auto text = typical_event();
  const auto at = text.find(R"("data":)") + 7;
  return text.substr(0, at) + data + "}";
}

volatile std::size_t sink = 0;  // keeps the work from being optimised away

double run_parser(const std::string& text, std::size_t n) {
  const auto start = bench::steady::now();
  for (std::size_t k = 0; k < n; ++k) {
    json::parse_options opt;
    opt.max_depth = 33;
    unsigned char scratch[4096];
    json::parser p(json::storage_ptr(), opt, scratch);
    json::error_code ec;
    p.write(text.data(), text.size(), ec);
    sink = sink + p.release().as_object().size();
  }
  return bench::seconds_between(start, bench::steady::now());
}

double run_checked(const std::string& text, std::size_t n) {
  std::vector<switchboard::core::codec::wide_integer> wide;
  const auto start = bench::steady::now();
  for (std::size_t k = 0; k < n; ++k) {
    json::value v;
    json::error_code ec;
    std::size_t offset = 0;
    wide.clear();
    switchboard::core::codec::parse_json_checked(text, 33, v, ec, offset, wide);
    sink = sink + v.as_object().size() + wide.size();
  }
  return bench::seconds_between(start, bench::steady::now());
}

double run_decode(const std::string& text, std::size_t n) {
  const auto start = bench::steady::now();
  for (std::size_t k = 0; k < n; ++k) {
    auto r = switchboard::decode_event(text);
    sink = sink + (r ? r.value->data.size() : 0);
  }
  return bench::seconds_between(start, bench::steady::now());
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  if (a.has("help")) {
    std::fprintf(stderr, "codec_bench [--events=200000] [--reps=7]\n");
    return 0;
  }
  const auto n = a.num<std::size_t>("events", 200000);
  const auto reps = a.num<std::size_t>("reps", 7);

  struct doc {
    const char* name;
    std::string text;
  };
  const std::vector<doc> docs{{"typical", typical_event()}, {"numbers", numbers_event()}};
  for (const auto& d : docs) {
    if (!switchboard::decode_event(d.text)) {
      std::fprintf(stderr, "codec_bench: the %s document does not decode\n", d.name);
      return 1;
    }
    run_parser(d.text, n / 10);  // warm-up
    run_checked(d.text, n / 10);
    run_decode(d.text, n / 10);
    std::vector<double> parser, checked, decode, paired;
    for (std::size_t r = 0; r < reps; ++r) {
      const double p = run_parser(d.text, n) / static_cast<double>(n) * 1e9;
      const double c = run_checked(d.text, n) / static_cast<double>(n) * 1e9;
      const double e = run_decode(d.text, n) / static_cast<double>(n) * 1e9;
      parser.push_back(p);
      checked.push_back(c);
      decode.push_back(e);
      paired.push_back(c / p);
    }
    auto line = [&](const char* variant, const std::vector<double>& ns) {
      bench::json_line j;
      j.str("bench", "codec")
          .str("document", d.name)
          .number("bytes", static_cast<double>(d.text.size()))
          .str("variant", variant)
          .number("ns_per_event", bench::median(ns))
          .raw("runs_ns", bench::num_list(ns));
      j.print();
    };
    line("parser", parser);
    line("checked", checked);
    line("decode", decode);
    bench::json_line ratio;
    ratio.str("bench", "codec")
        .str("document", d.name)
        .str("ratio", "checked_over_parser")
        .number("median_of_medians", bench::median(checked) / bench::median(parser))
        .number("paired_median", bench::median(paired));
    ratio.print();
    std::fprintf(stderr,
                 "codec %-8s %4zu B: parser %.0f ns, checked %.0f ns (x%.3f paired), decode "
                 "%.0f ns\n",
                 d.name, d.text.size(), bench::median(parser), bench::median(checked),
                 bench::median(paired), bench::median(decode));
  }
  std::fprintf(stderr, "load average (1 min): %.2f\n", bench::loadavg1());
  return 0;
}
