{
  "targets": [
    {
      "target_name": "palisade_bpf",
      "sources": ["src/binding.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "<!@(pkg-config --cflags libbpf)"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "defines": ["NAPI_CPP_EXCEPTIONS", "NAPI_VERSION=8"],
      "libraries": ["<!@(pkg-config --libs libbpf)"]
    }
  ]
}
