#include "netpoll/dev/spec.h"

namespace np::dev {

const std::string* DeviceSpec::option(std::string_view key) const {
  for (const auto& [k, v] : options) {
    if (k == key) return &v;
  }
  return nullptr;
}

SetupResult<DeviceSpec> parse_device_spec(std::string_view text) {
  const std::string quoted = "device string '" + std::string(text) + "'";
  const auto colon = text.find(':');
  // A bare interface name ("eth0", as netconsole's option string has it)
  // means an AF_PACKET device on that interface.
  if (colon == std::string_view::npos && !text.empty() && text.size() <= 15 &&
      text.find_first_of("/?&= \t") == std::string_view::npos) {
    DeviceSpec spec;
    spec.text = "packet:" + std::string(text);
    spec.kind = "packet";
    spec.target = std::string(text);
    return spec;
  }
  if (colon == std::string_view::npos || colon == 0) {
    return setup_error(Errc::kInvalidArgument,
                       quoted + ": expected an interface name or KIND:TARGET, e.g. eth0, packet:eth0, xdp:eth0, "
                                "tap:tap0, udp:127.0.0.1:7001@127.0.0.1:7000, pair:name");
  }
  DeviceSpec spec;
  spec.text = std::string(text);
  spec.kind = std::string(text.substr(0, colon));
  std::string_view rest = text.substr(colon + 1);
  const auto question = rest.find('?');
  spec.target = std::string(rest.substr(0, question));
  if (spec.target.empty()) {
    return setup_error(Errc::kInvalidArgument, quoted + ": nothing after '" + spec.kind + ":'");
  }
  if (question != std::string_view::npos) {
    std::string_view opts = rest.substr(question + 1);
    if (opts.empty()) return setup_error(Errc::kInvalidArgument, quoted + ": nothing after '?'");
    while (!opts.empty()) {
      const auto amp = opts.find('&');
      const std::string_view item = opts.substr(0, amp);
      const auto eq = item.find('=');
      if (item.empty() || eq == std::string_view::npos || eq == 0) {
        return setup_error(Errc::kInvalidArgument,
                           quoted + ": option '" + std::string(item) + "' is not KEY=VALUE");
      }
      const std::string key(item.substr(0, eq));
      if (spec.option(key) != nullptr) {
        return setup_error(Errc::kInvalidArgument, quoted + ": option '" + key + "' given twice");
      }
      spec.options.emplace_back(key, std::string(item.substr(eq + 1)));
      if (amp == std::string_view::npos) break;
      opts = opts.substr(amp + 1);
      if (opts.empty()) {
        return setup_error(Errc::kInvalidArgument, quoted + ": trailing '&'");
      }
    }
  }
  return spec;
}

}  // namespace np::dev
