#include "app/commands.h"

int main(int argc, char** argv) { return svcbox::app::runCli(argc, argv); }
