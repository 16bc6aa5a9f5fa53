// The pure lead rules (src/core/lead_rules.hpp, src/core/phone.hpp, src/core/form.hpp).

#include "core/lead_rules.hpp"
#include "core/form.hpp"
#include "core/phone.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace switchboard::core;
namespace json = boost::json;

namespace {

json::object good() {
  return {{"customer_name", "Ana"},
          {"customer_phone", "+15557770001"},
          {"dealer_id", "D1"},
          {"location_id", "north"},
          {"message", "Is the red one still there?"}};
}

std::string problem_field(const json::value& v, std::size_t max = 1600) {
  auto r = parse_submission(v, max);
  auto* p = std::get_if<input_problem>(&r);
  return p != nullptr ? p->field : "<none>";
}

}  // namespace

TEST_CASE("E.164 numbers: a plus, a country code, 8 to 15 digits", "[lead_rules]") {
  CHECK_FALSE(e164_problem("+15557770001"));
  CHECK_FALSE(e164_problem("+447911123456"));
  CHECK(e164_problem("")->find("empty") != std::string::npos);
  CHECK(e164_problem("15557770001")->find("'+'") != std::string::npos);
  CHECK(e164_problem("+1 555 777 0001")->find("digit") != std::string::npos);
  CHECK(e164_problem("+1555")->find("4 digits") != std::string::npos);
  CHECK(e164_problem("+1234567890123456")->find("16 digits") != std::string::npos);
  CHECK(e164_problem("+05557770001")->find("0") != std::string::npos);
}

TEST_CASE("a submission is read with every field checked", "[lead_rules]") {
  auto ok = parse_submission(good(), 1600);
  REQUIRE(std::holds_alternative<lead_submission>(ok));
  CHECK(std::get<lead_submission>(ok).customer_phone == "+15557770001");
  CHECK_FALSE(std::get<lead_submission>(ok).replace);

  auto replace = good();
  replace["replace"] = true;
  CHECK(std::get<lead_submission>(parse_submission(replace, 1600)).replace);

  for (const char* field :
       {"customer_name", "customer_phone", "dealer_id", "location_id", "message"}) {
    auto missing = good();
    missing.erase(field);
    CHECK(problem_field(missing) == field);
    auto blank = good();
    blank[field] = "  ";
    CHECK(problem_field(blank) == field);
    auto number = good();
    number[field] = 7;
    CHECK(problem_field(number) == field);
  }
  auto bad_phone = good();
  bad_phone["customer_phone"] = "(555) 777-0001";
  CHECK(problem_field(bad_phone) == "customer_phone");
  auto bad_id = good();
  bad_id["dealer_id"] = "D 1/../x";
  CHECK(problem_field(bad_id) == "dealer_id");
  auto unknown = good();
  unknown["colour"] = "red";
  CHECK(problem_field(unknown) == "colour");
  auto bad_replace = good();
  bad_replace["replace"] = "yes";
  CHECK(problem_field(bad_replace) == "replace");
  CHECK(problem_field(json::array{}) == "");
}

TEST_CASE("a message is measured in characters, as Twilio counts them", "[lead_rules]") {
  CHECK(characters("héllo") == 5);
  CHECK(characters("\xF0\x9F\x9A\x97") == 1);  // one emoji, four bytes
  auto m = good();
  m["message"] = std::string(10, 'x');
  CHECK(problem_field(m, 10) == "<none>");
  m["message"] = std::string(11, 'x');
  CHECK(problem_field(m, 10) == "message");
  std::string emojis;
  for (int n = 0; n < 10; ++n)
    emojis += "\xF0\x9F\x9A\x97";
  m["message"] = emojis;  // 40 bytes, 10 characters
  CHECK(problem_field(m, 10) == "<none>");
}

TEST_CASE("a new conversation takes the first proxy number its customer and location do not use",
          "[lead_rules]") {
  const std::vector<std::string> pool{"+15550100001", "+15550100002", "+15550100003"};
  CHECK(choose_proxy(pool, {}) == "+15550100001");
  CHECK(choose_proxy(pool, {"+15550100001"}) == "+15550100002");
  CHECK(choose_proxy(pool, {"+15550100001", "+15550100002"}) == "+15550100003");
  CHECK_FALSE(choose_proxy(pool, {"+15550100001", "+15550100002", "+15550100003"}));
  CHECK_FALSE(choose_proxy({}, {}));
}

TEST_CASE("admission: open a lead, refuse a duplicate, or replace it on request", "[lead_rules]") {
  CHECK(admit(std::nullopt, false) == admission::open_new);
  CHECK(admit(std::nullopt, true) == admission::open_new);
  CHECK(admit(std::string{"L-1"}, false) == admission::already_open);
  CHECK(admit(std::string{"L-1"}, true) == admission::replace_open);
}

TEST_CASE("keys that name leads, dealers and locations are safe in a URL path", "[lead_rules]") {
  CHECK(valid_key("L-1_a.b"));
  CHECK_FALSE(valid_key(""));
  CHECK_FALSE(valid_key("a/b"));
  CHECK_FALSE(valid_key(std::string(129, 'a')));
}

TEST_CASE("form bodies decode as Twilio sends them", "[lead_rules]") {
  auto p = parse_form("Body=Hi+there%21&From=%2B15557770001&Empty=&Flag&Body=again");
  REQUIRE(p.size() == 5);
  CHECK(p[0] == std::pair<std::string, std::string>{"Body", "Hi there!"});
  CHECK(p[1].second == "+15557770001");
  CHECK(p[2].second.empty());
  CHECK(p[3] == std::pair<std::string, std::string>{"Flag", ""});
  CHECK(p[4].second == "again");
  CHECK(parse_form("%zz=1")[0].first == "%zz");
}

TEST_CASE("decide_admission applies the web-to-text rules to what the transaction saw",
          "[lead_rules]") {
  using verdict = admission_effects::verdict;
  const std::vector<std::string> pool{"+15550000001", "+15550000002"};
  lead_submission sub;
  sub.customer_phone = "+15557770001";
  sub.dealer_id = "D1";
  sub.location_id = "north";

  admission_snapshot seen;
  seen.location_known = true;

  SECTION("a repeat of an admitted submit does nothing") {
    seen.lead_exists = true;
    CHECK(decide_admission(seen, sub, pool).what == verdict::exists);
  }
  SECTION("an unknown location is refused") {
    seen.location_known = false;
    CHECK(decide_admission(seen, sub, pool).what == verdict::unknown_location);
  }
  SECTION("same phone, dealer and location as an open lead: already open, nothing changes") {
    seen.open_lead = "L1";
    seen.open_conversation = "cv-1";
    const auto e = decide_admission(seen, sub, pool);
    CHECK(e.what == verdict::already_open);
    CHECK_FALSE(e.close_lead);
    CHECK_FALSE(e.join_conversation);
  }
  SECTION("resubmitted with replace: the old lead closes and the new one joins its conversation") {
    seen.open_lead = "L1";
    seen.open_conversation = "cv-1";
    sub.replace = true;
    const auto e = decide_admission(seen, sub, pool);
    CHECK(e.what == verdict::admit);
    CHECK(e.close_lead == std::optional<std::string>{"L1"});
    CHECK(e.join_conversation == std::optional<std::string>{"cv-1"});
    CHECK_FALSE(e.new_proxy);
  }
  SECTION(
      "another location's lead with the same customer and location phone shares its conversation") {
    seen.open_conversation = "cv-7";
    const auto e = decide_admission(seen, sub, pool);
    CHECK(e.what == verdict::admit);
    CHECK(e.join_conversation == std::optional<std::string>{"cv-7"});
    CHECK_FALSE(e.new_proxy);
  }
  SECTION("no open conversation: a new one through the first free number") {
    seen.proxies_in_use = {"+15550000001"};
    const auto e = decide_admission(seen, sub, pool);
    CHECK(e.what == verdict::admit);
    CHECK(e.new_proxy == std::optional<std::string>{"+15550000002"});
  }
  SECTION("every number binds the customer or the location: refused") {
    seen.proxies_in_use = {"+15550000001", "+15550000002"};
    CHECK(decide_admission(seen, sub, pool).what == verdict::no_free_proxy);
  }
  SECTION("no number is free, but a closing conversation is releasing one: wait for it") {
    seen.proxies_in_use = {"+15550000001", "+15550000002"};
    seen.proxies_releasing = {"+15550000002"};
    CHECK(decide_admission(seen, sub, pool).what == verdict::wait_for_release);
  }
}

TEST_CASE("lead and conversation statuses read back as what was stored", "[lead_rules]") {
  for (auto s : {lead_status::opening, lead_status::open, lead_status::closed, lead_status::failed})
    CHECK(lead_status_of(to_string(s)) == s);
  for (auto s : {conversation_status::opening, conversation_status::open,
                 conversation_status::closing, conversation_status::closed})
    CHECK(conversation_status_of(to_string(s)) == s);
  CHECK_FALSE(lead_status_of("opened"));
  CHECK(active_lead("opening"));
  CHECK(active_lead("open"));
  CHECK_FALSE(active_lead("closed"));
  CHECK(active_conversation("open"));
  CHECK_FALSE(active_conversation("closing"));
  CHECK(to_string(close_reason::replaced) == "replaced");
}

TEST_CASE("a customer phone that is one of our own numbers is refused, naming customer_phone",
          "[lead_rules]") {
  const std::vector<std::string> pool{"+15550100001", "+15550100002"};
  CHECK_FALSE(customer_phone_problem("+15557770001", "+15550001001", pool));
  auto proxy = customer_phone_problem("+15550100002", "+15550001001", pool);
  REQUIRE(proxy);
  CHECK(proxy->field == "customer_phone");
  CHECK(proxy->problem.find("leads.proxy_numbers") != std::string::npos);
  auto location = customer_phone_problem("+15550001001", "+15550001001", pool);
  REQUIRE(location);
  CHECK(location->field == "customer_phone");
  CHECK(location->problem.find("location") != std::string::npos);
}
