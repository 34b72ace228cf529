// ca-clone: exports subsystem certificates into a PKCS#12 bundle and spawns clones.
// The commands arrive with the cloning issue; today only --help answers.
#include <cstdio>
#include <cstring>

static const char* kUsage =
    "usage: ca-clone <command> [options]\n"
    "\n"
    "Commands (not yet available in this build):\n"
    "  prepare   export the subsystem certificates and keys of an instance into PKCS#12\n"
    "  p12-find  list what a PKCS#12 bundle holds\n"
    "  spawn     create a clone from a bundle and a YAML file\n"
    "  status    show every instance of the topology\n"
    "  remove    retire a clone\n"
    "\n"
    "Options:\n"
    "  -h, --help  show this help\n";

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::fprintf(stderr, "ca-clone: '%s' is not available in this build (see --help)\n", argv[1]);
  return 2;
}
