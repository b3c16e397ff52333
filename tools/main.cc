#include "tools/command.h"

int main(int argc, char** argv) { return cautograd::RunCli(argc, argv); }
