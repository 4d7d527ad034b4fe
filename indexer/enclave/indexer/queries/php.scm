; PHP: definitions and `use`/require targets for the Enclave chunker
; (captures: see indexer/langspec.py).

(class_declaration name: (name) @name) @definition.class
(interface_declaration name: (name) @name) @definition.interface
(trait_declaration name: (name) @name) @definition.trait
(enum_declaration name: (name) @name) @definition.enum
(function_definition name: (name) @name) @definition.function
(method_declaration name: (name) @name) @definition.method

(namespace_use_declaration (namespace_use_clause [(qualified_name) (name)] @import))
(namespace_use_declaration (namespace_name) @import body: (namespace_use_group))
([(require_expression) (require_once_expression) (include_expression) (include_once_expression)]
  (string (string_content) @import))
