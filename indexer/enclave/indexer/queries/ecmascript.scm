; Patterns shared by JavaScript, TypeScript and TSX (inherited: see indexer/langspec.py).
; `export` wraps a definition (langspec wrappers), so it stays in the definition's chunk.

(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(method_definition
  name: [(property_identifier) (private_property_identifier) (string) (computed_property_name)] @name
) @definition.method
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function
(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function

(import_statement source: (string) @import)
(export_statement source: (string) @import)
((call_expression
   function: (identifier) @_require
   arguments: (arguments . (string) @import))
 (#eq? @_require "require"))
(call_expression function: (import) arguments: (arguments . (string) @import))
