; Go: definitions and imports for the Enclave chunker (captures: see indexer/langspec.py).
; A method's receiver type is its @scope: func (s *Server) Start() -> "Server.Start".

(function_declaration name: (identifier) @name) @definition.function

(method_declaration
  receiver: (parameter_list
    (parameter_declaration
      type: [
        (type_identifier) @scope
        (pointer_type (type_identifier) @scope)
        (generic_type type: (type_identifier) @scope)
        (pointer_type (generic_type type: (type_identifier) @scope))
      ]))
  name: (field_identifier) @name) @definition.method

(type_spec name: (type_identifier) @name type: (struct_type)) @definition.struct
(type_spec name: (type_identifier) @name type: (interface_type)) @definition.interface
(type_spec
  name: (type_identifier) @name
  type: [
    (type_identifier) (qualified_type) (pointer_type) (slice_type) (map_type) (array_type)
    (channel_type) (function_type) (generic_type)
  ]) @definition.type
(type_alias name: (type_identifier) @name) @definition.type

(import_spec path: (interpreted_string_literal) @import)
