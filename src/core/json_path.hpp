#pragma once

// Dotted paths into JSON state ("accountManager.name") and the name templates targets use
// ("application-{id}"). Pure; shared by enrichment (lookup parameters), AMQP mapping (entity id
// fields) and writers (document names, keys, fields).

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace switchboard::core {

/// The value at `path` in `v` ("a.b.c": object members only), or nullptr if any step is
/// missing or not an object. An empty path is `v` itself.
const boost::json::value* find_path(const boost::json::value& v, std::string_view path);

/// A scalar as text: strings as they are, integers and booleans in JSON form, doubles only if
/// whole (42.0 -> "42"). Null, objects, arrays and fractional doubles have no text.
std::optional<std::string> scalar_text(const boost::json::value& v);

/// The text of a template, or which placeholder could not be filled.
struct rendered {
  std::optional<std::string> text;
  std::string missing;  ///< the placeholder without a scalar value, when `text` is empty
};

/// Fills `{id}`, `{kind}` and `{dotted.path}` (looked up in `state`); `{{` and `}}` are
/// literal braces. A placeholder whose value is missing or not a scalar fails the render.
rendered render_template(std::string_view tmpl, std::string_view kind, std::string_view id,
                         const boost::json::value& state);

/// Checks a template's syntax (balanced braces, non-empty names); the problem, if any.
std::optional<std::string> template_problem(std::string_view tmpl);

}  // namespace switchboard::core
