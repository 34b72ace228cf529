#pragma once
// The subcommands of ca-clone: one file each (<name>_command.cpp), listed in main.cpp's table.
#include "core/command_line.hpp"

namespace ca::clone_tools {

// The arguments after the subcommand's name.
using Args = CommandArgs;

int run_prepare(Args args);     // prepare_command.cpp
int run_p12_find(Args args);    // p12_find_command.cpp
int run_spawn(Args args);       // spawn_command.cpp
int run_status(Args args);      // status_command.cpp
int run_remove(Args args);      // status_command.cpp
int run_promote(Args args);     // promote_command.cpp
int run_crl_master(Args args);  // crl_master_command.cpp

}  // namespace ca::clone_tools
