; Bash: functions and sourced files for the Enclave chunker (captures: see indexer/langspec.py).

(function_definition name: (word) @name) @definition.function

((command
   name: (command_name) @_source
   argument: [(word) (string) (raw_string)] @import)
 (#any-of? @_source "source" "."))
