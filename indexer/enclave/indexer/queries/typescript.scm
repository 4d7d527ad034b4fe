; inherits: ecmascript
; TypeScript (and TSX, which inherits this file): definitions and imports for the chunker.

(function_signature name: (identifier) @name) @definition.function
(class_declaration name: (type_identifier) @name) @definition.class
(abstract_class_declaration name: (type_identifier) @name) @definition.class
(interface_declaration name: (type_identifier) @name) @definition.interface
(enum_declaration name: (identifier) @name) @definition.enum
(type_alias_declaration name: (type_identifier) @name) @definition.type
(internal_module name: [(identifier) (nested_identifier) (string)] @name) @definition.namespace
(module name: [(identifier) (nested_identifier) (string)] @name) @definition.module
(import_require_clause source: (string) @import)
