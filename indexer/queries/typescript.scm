; TypeScript: definitions and imports for the Enclave chunker (captures: see indexer/langspec.py).
; tsx.scm is this file (the TSX grammar has the same node types plus JSX).

(function_declaration name: (identifier) @name) @definition.function
(generator_function_declaration name: (identifier) @name) @definition.function
(function_signature name: (identifier) @name) @definition.function
(class_declaration name: (type_identifier) @name) @definition.class
(abstract_class_declaration name: (type_identifier) @name) @definition.class
(interface_declaration name: (type_identifier) @name) @definition.interface
(enum_declaration name: (identifier) @name) @definition.enum
(type_alias_declaration name: (type_identifier) @name) @definition.type
(internal_module name: [(identifier) (nested_identifier) (string)] @name) @definition.namespace
(module name: [(identifier) (nested_identifier) (string)] @name) @definition.module
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
(import_require_clause source: (string) @import)
(export_statement source: (string) @import)
((call_expression
   function: (identifier) @_require
   arguments: (arguments . (string) @import))
 (#eq? @_require "require"))
(call_expression function: (import) arguments: (arguments . (string) @import))
