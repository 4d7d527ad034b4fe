; Ruby: definitions and require targets for the Enclave chunker (captures: see indexer/langspec.py).
; `def` inside a class or module is a method (langspec method_containers).

(class name: [(constant) (scope_resolution)] @name) @definition.class
(module name: [(constant) (scope_resolution)] @name) @definition.module
(singleton_class) @definition.class
(method name: (_) @name) @definition.function
(singleton_method name: (_) @name) @definition.method

((call
   method: (identifier) @_require
   arguments: (argument_list . (string (string_content) @import)))
 (#any-of? @_require "require" "require_relative" "load" "autoload"))
