; C++: definitions and #include targets for the Enclave chunker (captures: see indexer/langspec.py).
; `template <...>` wraps a definition (langspec wrappers); an out-of-line `A::f` names itself.

(function_definition
  declarator: [
    (function_declarator declarator: (_) @name)
    (pointer_declarator declarator: (function_declarator declarator: (_) @name))
    (reference_declarator (function_declarator declarator: (_) @name))
  ]) @definition.function
(class_specifier name: (_) @name body: (field_declaration_list)) @definition.class
(struct_specifier name: (_) @name body: (field_declaration_list)) @definition.struct
(union_specifier name: (_) @name body: (field_declaration_list)) @definition.union
(enum_specifier name: (_) @name body: (enumerator_list)) @definition.enum
(namespace_definition name: (_) @name) @definition.namespace
(type_definition
  type: [(struct_specifier body: (_)) (class_specifier body: (_)) (union_specifier body: (_))
         (enum_specifier body: (_))]
  declarator: (type_identifier) @name) @definition.type

(preproc_include path: (_) @import)
