// Registry: finds the SharedDevice of a device string, or opens it. Clients
// of one process that name the same device share one SharedDevice.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "netpoll/base/result.h"
#include "netpoll/core/shared_device.h"
#include "netpoll/dev/spec.h"

namespace np::core {

class Registry {
 public:
  // The registry of this process (the CLI and netconsole use it).
  static Registry& process();

  // Context: setup.
  [[nodiscard]] SetupResult<std::shared_ptr<SharedDevice>> acquire(const dev::DeviceSpec& spec,
                                                                   const DeviceConfig& cfg);

 private:
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<SharedDevice>> devices_;
};

}  // namespace np::core
