#pragma once

#include <cstdlib>

// SVCBOX_TEST_HOOK("SVCBOX_TEST_...") reads a test hook's environment variable in a build with
// the tests (CMakeLists.txt), and is null (the name not even compiled in) in any other build.
#ifdef SVCBOX_TEST_HOOKS
#define SVCBOX_TEST_HOOK(name) std::getenv(name)
#else
#define SVCBOX_TEST_HOOK(name) static_cast<const char*>(nullptr)
#endif
