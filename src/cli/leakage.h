/*
 * `vashista leakage`: off-face leakage of the EG projection solver against the
 * face theorem's bound, on planted-gap problems (leakage.c).
 */
#ifndef VS_CLI_LEAKAGE_H
#define VS_CLI_LEAKAGE_H

/* Runs the subcommand on its own arguments (argv[0] is the first option, not
   the command name). Returns the process exit status: 0 ok, 1 a measured mass
   exceeded the bound or a run-time error, 2 a usage error. */
int vs_cli_leakage(int argc, char **argv);

#endif /* VS_CLI_LEAKAGE_H */
