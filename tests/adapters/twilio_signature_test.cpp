// X-Twilio-Signature validation against the vectors of Twilio's own libraries (twilio-csharp,
// twilio-php and twilio-python RequestValidatorTest, auth token "12345"): a webhook switchboard
// accepts must be one Twilio signed, and nothing else.

#include "adapters/twilio/signature.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

using namespace switchboard::adapters::twilio;

namespace {

using params = std::vector<std::pair<std::string, std::string>>;

const std::string token = "12345";
const std::string url = "https://mycompany.com/myapp.php?foo=1&bar=2";
const std::string signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
const std::string body = R"({"property": "value", "boolean": true})";
const std::string body_hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

/// Intentionally out of alphabetical order, as Twilio's tests have them.
params call_params() {
  return {{"CallSid", "CA1234567890ABCDE"},
          {"From", "+14158675309"},
          {"Digits", "1234"},
          {"To", "+18005551212"},
          {"Caller", "+14158675309"}};
}

}  // namespace

TEST_CASE("validate_twilio_signature accepts Twilio's published signatures",
          "[twilio][signature]") {
  CHECK(validate_twilio_signature(token, url, call_params(), signature));

  SECTION("a name given several times: sorted by value, each pair once") {
    const params repeated{{"Sid", "CA123"},
                          {"SidAccount", "AC123"},
                          {"Digits", "5678"},
                          {"Digits", "1234"},
                          {"Digits", "1234"}};
    CHECK(validate_twilio_signature(token, url, repeated, "IK+Dwps556ElfBT0I3Rgjkr1wJU="));
  }

  SECTION("the URL's case is signed as written") {
    const std::string mixed = "https://MyCompany.com/myapp.php?foo=1&bar=2";
    CHECK(validate_twilio_signature(token, mixed, call_params(), "g9IN/x4Cft2g517EjYvEvM/W7LU="));
    // Twilio's own libraries refuse the lower-case URL's signature for the mixed-case URL.
    CHECK_FALSE(validate_twilio_signature(token, mixed, call_params(), signature));
    CHECK(validate_twilio_signature(token, "https://MyCompany.com:1234/myapp.php?foo=1&bar=2",
                                    call_params(), "PCqOZm8cnu/L6+u5i5fuEd+Iac4="));
    CHECK(validate_twilio_signature(token, "http://MyCompany.com/myapp.php?foo=1&bar=2",
                                    call_params(), "XY7AlKOKL6im4yWyX84gldUrtis="));
  }

  SECTION("credentials in the URL are kept") {
    CHECK(validate_twilio_signature(token,
                                    "http://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
                                    call_params(), "PJ08CxXr7KLPjEQCTc8LkUSMwSM="));
    CHECK(validate_twilio_signature(token,
                                    "HTTP://username:password@MyCompany.com/myapp.php?foo=1&bar=2",
                                    call_params(), "hy/l8pca+LFms4cvRdv8uiP6NGc="));
    CHECK(validate_twilio_signature(token,
                                    "http://Username:Password@MyCompany.com/myapp.php?foo=1&bar=2",
                                    call_params(), "SkTSKyDJH9kUlhItI0slbgZ1UsI="));
  }

  SECTION("with or without the port, as Twilio's validators try both") {
    // Signed with the standard port, checked against the URL without one.
    CHECK(validate_twilio_signature(token, url, call_params(), "kvajT1Ptam85bY51eRf/AJRuM3w="));
    CHECK(validate_twilio_signature(token, "http://mycompany.com/myapp.php?foo=1&bar=2",
                                    call_params(), "0ZXoZLH/DfblKGATFgpif+LLRf4="));
    // Signed without the port, checked against a URL with one.
    CHECK(validate_twilio_signature(token, "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                                    call_params(), signature));
    CHECK(validate_twilio_signature(token, "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                                    call_params(), signature));
    // Signed with a custom port, checked against the same URL.
    CHECK(validate_twilio_signature(token, "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                                    call_params(), "CYn1h0gLBdNxDGkKJg6hYohgeD8="));
    CHECK(validate_twilio_signature(token, "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                                    call_params(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="));
  }
}

TEST_CASE("validate_twilio_signature refuses anything Twilio did not sign", "[twilio][signature]") {
  SECTION("a tampered parameter") {
    auto p = call_params();
    p[2].second = "9999";  // Digits
    CHECK_FALSE(validate_twilio_signature(token, url, p, signature));
  }
  SECTION("an added or a missing parameter") {
    auto more = call_params();
    more.emplace_back("Body", "hi");
    CHECK_FALSE(validate_twilio_signature(token, url, more, signature));
    auto fewer = call_params();
    fewer.pop_back();
    CHECK_FALSE(validate_twilio_signature(token, url, fewer, signature));
  }
  SECTION("a parameter's value moved to another name") {
    auto p = call_params();
    std::swap(p[1].second, p[3].second);  // From <-> To
    CHECK_FALSE(validate_twilio_signature(token, url, p, signature));
  }
  SECTION("another URL: path, query, host or scheme") {
    CHECK_FALSE(validate_twilio_signature(token, "https://mycompany.com/other.php?foo=1&bar=2",
                                          call_params(), signature));
    CHECK_FALSE(validate_twilio_signature(token, url + "&extra=1", call_params(), signature));
    CHECK_FALSE(validate_twilio_signature(token, "https://attacker.example/myapp.php?foo=1&bar=2",
                                          call_params(), signature));
    CHECK_FALSE(validate_twilio_signature(token, "http://mycompany.com/myapp.php?foo=1&bar=2",
                                          call_params(), signature));
  }
  SECTION("a tampered, truncated, empty or foreign signature") {
    CHECK_FALSE(
        validate_twilio_signature(token, url, call_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B9="));
    CHECK_FALSE(
        validate_twilio_signature(token, url, call_params(), "RSOYDt4T1cUTdK1PDd93/VVr8B8"));
    CHECK_FALSE(
        validate_twilio_signature(token, url, call_params(), "NOTRSOYDt4T1cUTdK1PDd93/VVr8B8="));
    CHECK_FALSE(validate_twilio_signature(token, url, call_params(), ""));
    CHECK_FALSE(validate_twilio_signature("54321", url, call_params(), signature));
  }
  SECTION("URLs that are not absolute are compared as given") {
    CHECK_FALSE(
        validate_twilio_signature(token, "/myapp.php?foo=1&bar=2", call_params(), signature));
    CHECK(validate_twilio_signature(token, "not a url", {},
                                    twilio_signature(token, "not a url", {})));
  }
}

TEST_CASE("validate_twilio_json_signature checks the body hash and the URL's signature",
          "[twilio][signature]") {
  const auto url_with_hash = url + "&bodySHA256=" + body_hash;
  CHECK(validate_twilio_json_signature(token, url_with_hash, body, "a9nBmqA0ju/hNViExpshrM61xv4="));
  CHECK(validate_twilio_json_signature(token,
                                       "https://mycompany.com/myapp.php?bodySHA256=" + body_hash,
                                       body, "y77kIzt2vzLz71DgmJGsen2scGs="));
  // The port rule applies here too.
  CHECK(validate_twilio_json_signature(
      token, "https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256=" + body_hash, body,
      "a9nBmqA0ju/hNViExpshrM61xv4="));

  SECTION("a body that is not the one hashed") {
    CHECK_FALSE(validate_twilio_json_signature(token, url_with_hash,
                                               R"({"property": "value", "boolean": false})",
                                               "a9nBmqA0ju/hNViExpshrM61xv4="));
    CHECK_FALSE(validate_twilio_json_signature(token, url_with_hash, body + " ",
                                               "a9nBmqA0ju/hNViExpshrM61xv4="));
  }
  SECTION("a hash in the URL that is not the one signed") {
    // A sender who changes body and hash together still needs Twilio's signature of the URL.
    const std::string other_body = "{}";
    const std::string other_hash =
        "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    CHECK_FALSE(validate_twilio_json_signature(token, url + "&bodySHA256=" + other_hash, other_body,
                                               "a9nBmqA0ju/hNViExpshrM61xv4="));
  }
  SECTION("no bodySHA256, or a tampered signature") {
    CHECK_FALSE(validate_twilio_json_signature(token, url, body, signature));
    CHECK_FALSE(
        validate_twilio_json_signature(token, url_with_hash, body, "a9nBmqA0ju/hNViExpshrM61xv5="));
    CHECK_FALSE(validate_twilio_json_signature(token, url_with_hash, body, ""));
    CHECK_FALSE(validate_twilio_json_signature("54321", url_with_hash, body,
                                               "a9nBmqA0ju/hNViExpshrM61xv4="));
  }
}
