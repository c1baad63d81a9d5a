// The name of an errno value, shared by both addons (secbeat_native's TCP engine, secbeat_xdp), so that a JS
// error's `code` reads the same whichever produced it.
#pragma once

#include <cstring>
#include <string>

// "ECONNRESET" for ECONNRESET; "E<n>" for numbers glibc does not name.
inline std::string sb_errno_name(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  return "E" + std::to_string(err);
}
