# Writes OUT: a C++ file defining one `extern const char NAME[]` per asset,
# its bytes as a raw string literal. Run by add_custom_command (script mode):
#   cmake -DOUT=f.cc -DASSETS="kName=path|kOther=path" -P embed_assets.cmake
set(text "// Generated from lib/report/assets/ by cmake/embed_assets.cmake. Do not edit.\nnamespace cautograd {\n")
string(REPLACE "|" ";" assets "${ASSETS}")
foreach(pair IN LISTS assets)
  string(REPLACE "=" ";" parts "${pair}")
  list(GET parts 0 name)
  list(GET parts 1 path)
  file(READ "${path}" body)
  string(FIND "${body}" ")cag_asset\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${path} contains the raw string delimiter )cag_asset\"")
  endif()
  string(APPEND text "extern const char ${name}[];\nconst char ${name}[] = R\"cag_asset(${body})cag_asset\";\n")
endforeach()
string(APPEND text "}  // namespace cautograd\n")
file(WRITE "${OUT}.tmp" "${text}")
file(RENAME "${OUT}.tmp" "${OUT}")
