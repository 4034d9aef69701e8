# The runtime's text side: tokenizer.json BPE (PCRE2 for the pre-tokenizer
# regexes) and its C API. Included from runtime/CMakeLists.txt.
target_sources(dsrt PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/Utf8.cpp
  ${CMAKE_CURRENT_LIST_DIR}/PreTokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/Tokenizer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/TokenizerLoad.cpp
  ${CMAKE_CURRENT_LIST_DIR}/TextApi.cpp
)
find_library(DS_PCRE2 NAMES pcre2-8 REQUIRED)
target_link_libraries(dsrt PRIVATE ${DS_PCRE2})
