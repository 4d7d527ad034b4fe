; Lua: functions and require targets for the Enclave chunker (captures: see indexer/langspec.py).
; `function M.add` and `function M:method` name themselves ("M.add", "M.method").

(function_declaration
  name: [(identifier) (dot_index_expression) (method_index_expression)] @name) @definition.function
(variable_declaration
  (assignment_statement
    (variable_list . name: (_) @name)
    (expression_list . value: (function_definition)))) @definition.function

((function_call
   name: (identifier) @_require
   arguments: [
     (arguments . (string content: (string_content) @import))
     (string content: (string_content) @import)
   ])
 (#eq? @_require "require"))
