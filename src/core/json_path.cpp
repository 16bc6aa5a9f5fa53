#include "core/json_path.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cmath>

namespace switchboard::core {

namespace json = boost::json;

const json::value* find_path(const json::value& v, std::string_view path) {
  const json::value* at = &v;
  while (!path.empty()) {
    const auto dot = path.find('.');
    const std::string_view step = path.substr(0, dot);
    const auto* obj = at->if_object();
    if (obj == nullptr)
      return nullptr;
    const auto it = obj->find(json::string_view(step.data(), step.size()));
    if (it == obj->end())
      return nullptr;
    at = &it->value();
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
  }
  return at;
}

std::optional<std::string> scalar_text(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: return std::string(v.get_string().data(), v.get_string().size());
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::bool_: return json::serialize(v);
    case json::kind::double_: {
      const double d = v.get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
        return std::to_string(static_cast<long long>(d));
      return std::nullopt;
    }
    default: return std::nullopt;
  }
}

namespace {

/// Walks `tmpl`, calling `literal(text)` and `field(name)`; false + why on a syntax error.
template <class Literal, class Field>
std::optional<std::string> walk(std::string_view tmpl, Literal literal, Field field) {
  std::size_t i = 0;
  while (i < tmpl.size()) {
    const char c = tmpl[i];
    if ((c == '{' || c == '}') && i + 1 < tmpl.size() && tmpl[i + 1] == c) {
      literal(std::string_view(&tmpl[i], 1));
      i += 2;
      continue;
    }
    if (c == '}')
      return "has a '}' without its '{' at offset " + std::to_string(i) +
             " (write '}}' for a literal brace)";
    if (c == '{') {
      const auto end = tmpl.find('}', i + 1);
      if (end == std::string_view::npos)
        return "has a '{' without its '}' at offset " + std::to_string(i);
      const std::string_view name = tmpl.substr(i + 1, end - i - 1);
      if (name.empty() || name.find('{') != std::string_view::npos || name.front() == '.' ||
          name.back() == '.' || name.find("..") != std::string_view::npos)
        return "has a malformed placeholder '{" + std::string(name) + "}'";
      if (auto stop = field(name))
        return stop;
      i = end + 1;
      continue;
    }
    const auto next = tmpl.find_first_of("{}", i);
    const auto stop = next == std::string_view::npos ? tmpl.size() : next;
    literal(tmpl.substr(i, stop - i));
    i = stop;
  }
  return std::nullopt;
}

}  // namespace

rendered render_template(std::string_view tmpl, std::string_view kind, std::string_view id,
                         const json::value& state) {
  rendered out;
  std::string text;
  std::string missing;
  const auto problem = walk(
      tmpl, [&](std::string_view lit) { text.append(lit); },
      [&](std::string_view name) -> std::optional<std::string> {
        if (name == "id") {
          text.append(id);
        } else if (name == "kind") {
          text.append(kind);
        } else {
          const auto* v = find_path(state, name);
          auto s = v ? scalar_text(*v) : std::nullopt;
          if (!s) {
            missing.assign(name);
            return std::string("missing");
          }
          text += *s;
        }
        return std::nullopt;
      });
  if (problem) {
    out.missing = missing.empty() ? *problem : missing;
    return out;
  }
  out.text = std::move(text);
  return out;
}

std::optional<std::string> template_problem(std::string_view tmpl) {
  return walk(
      tmpl, [](std::string_view) {},
      [](std::string_view) -> std::optional<std::string> { return std::nullopt; });
}

}  // namespace switchboard::core
